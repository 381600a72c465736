"""Issue 27: trust boundaries. Root trusts only root's files; no untrusted binary runs on the host;
a container sees only the emulator, never a directory above it; root's containers and builds give
host uid 0 nothing; locks never hang.

The planted "emulators" are real static ELF programs built here with gcc: each writes a marker file
in /tmp (writable by anyone, root and nobody included) when it runs. A marker that appears means
tbx ran the planted file on the host unconfined."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import need

from .conftest import TBX

QEMU_TEXT = ("qemu-aarch64 version 9.9.9 (planted)\\n"
             "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\\n")
PLANT_C = r'''
#include <fcntl.h>
#include <unistd.h>
#ifdef QEMU_TEXT
const char text[] = QEMU_TEXT;   /* looks like QEMU to a reader; does not act like it */
#endif
int main(int argc, char **argv) {
    int fd = open(MARKER, O_CREAT | O_WRONLY | O_APPEND, 0666);
    if (fd >= 0) { write(fd, "ran\n", 4); close(fd); }
#ifdef QEMU_TEXT
    if (argc < 0) write(1, text, sizeof text);
#endif
    return 0;
}
'''


@pytest.fixture(scope="module")
def plants(tmp_path_factory):
    """{"plain": a static ELF with no QEMU text, "lookalike": one that carries QEMU's version text},
    both writing to ``marker`` when run."""
    need(shutil.which("gcc") is not None, "gcc is needed to build the planted emulators")
    d = tmp_path_factory.mktemp("plants")
    marker = Path(f"/tmp/tbxt-marker-{uuid.uuid4().hex[:8]}")
    (d / "plant.c").write_text(PLANT_C)
    out = {}
    for kind, extra in (("plain", []), ("lookalike", [f'-DQEMU_TEXT="{QEMU_TEXT}"'])):
        exe = d / kind / "qemu-aarch64-static"
        exe.parent.mkdir()
        r = subprocess.run(["gcc", "-static", "-O1", f'-DMARKER="{marker}"', *extra, "-o", str(exe), str(d / "plant.c")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out[kind] = exe
    # they do write the marker when run (so a test that finds no marker means: not run)
    subprocess.run([str(out["plain"])], check=True)
    assert marker.exists()
    marker.unlink()
    yield {**out, "marker": marker}
    marker.unlink(missing_ok=True)


def _oci_image(ref: str, files: dict[str, bytes | int]) -> None:
    """Push an amd64 image whose one layer holds ``files`` (path -> bytes, or a size: that many zero
    bytes, streamed) to the test registry, without podman's storage."""
    with tempfile.TemporaryDirectory() as d:
        blobs = Path(d, "blobs", "sha256")
        blobs.mkdir(parents=True)
        raw = io.BytesIO()
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
            hashed = _Hashing(gz)
            with tarfile.open(fileobj=hashed, mode="w") as tar:
                for path, content in files.items():
                    info = tarfile.TarInfo(path.lstrip("/"))
                    info.mode = 0o755
                    if isinstance(content, int):
                        info.size = content
                        tar.addfile(info, _Zeros(content))
                    else:
                        info.size = len(content)
                        tar.addfile(info, io.BytesIO(content))
        layer = raw.getvalue()

        def put(data: bytes) -> str:
            h = hashlib.sha256(data).hexdigest()
            (blobs / h).write_bytes(data)
            return h

        lh = put(layer)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashed.sha.hexdigest()]}}).encode()
        ch = put(config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": "sha256:" + ch, "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                           "digest": "sha256:" + lh, "size": len(layer)}]}).encode()
        mh = put(manifest)
        Path(d, "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        Path(d, "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mh,
             "size": len(manifest)}]}))
        r = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{d}", f"docker://{ref}"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr


class _Hashing:
    """A write-only file that hashes what passes through (the layer's diff id, uncompressed)."""

    def __init__(self, out) -> None:
        self.out, self.sha = out, hashlib.sha256()

    def write(self, b) -> int:
        self.sha.update(b)
        return self.out.write(b)

    def tell(self) -> int:
        return self.out.tell()


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _registry(host) -> str:
    return host["TBX_TEST_EMULATOR_REF"].split("/", 1)[0]


@pytest.fixture
def user_config(rootless, host):
    """Write the test user's config.toml (owned by the user); put the old one back afterwards."""
    cfg = Path(rootless.home) / ".config" / "tbx" / "config.toml"
    saved = cfg.read_bytes() if cfg.exists() else None
    cfg.parent.mkdir(parents=True, exist_ok=True)
    for p in (cfg.parent.parent, cfg.parent):
        os.chown(p, host.uid, host.uid)

    def write(text: str, mode: int = 0o644) -> Path:
        cfg.write_text(text)
        os.chown(cfg, host.uid, host.uid)
        cfg.chmod(mode)
        return cfg

    yield write
    if saved is None:
        cfg.unlink(missing_ok=True)
    else:
        cfg.write_bytes(saved)
        os.chown(cfg, host.uid, host.uid)
        cfg.chmod(0o644)


def _user_owned_copy(src: Path, host, rootless) -> Path:
    d = Path(rootless.home) / f"tbxt-emu-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    shutil.copy(src, d / src.name)
    for p in (d, d / src.name):
        os.chown(p, host.uid, host.uid)
    return d


def _label(runner, name: str, key: str) -> str:
    return json.loads(runner.podman("container", "inspect", name).out)[0]["Config"]["Labels"].get(key, "")


# --- root follows nobody's configuration ------------------------------------------------------

def test_root_uses_its_own_configuration_never_an_inherited_xdg_config_home(root, rootless, host, plants, user_config,
                                                                           name, cleanup):
    emu_dir = _user_owned_copy(plants["lookalike"], host, rootless)
    try:
        user_config(f'emulator_paths = ["{emu_dir}"]\nemulator_image = "{host["TBX_TEST_BAD_EMULATOR_REF"]}"\n'
                    'default_arch = "s390x"\n')
        inherited = {"XDG_CONFIG_HOME": f"{rootless.home}/.config", "XDG_DATA_HOME": f"{rootless.home}/.local/share",
                     "HOME": rootless.home}
        # tbx check: root's own emulator, the user's planted one never looked at (nor run)
        r = root.tbx("check", "--arch", "aarch64", "--json", env=inherited)
        assert r.rc == 0, r.text
        emu = json.loads(r.out)["arches"][0]["emulator"]
        assert emu["path"] == "/usr/bin/qemu-aarch64-static", emu
        # tbx create --cpu: the same, and the CPU list comes from root's emulator
        cleanup(root, name)
        r = root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "--cpu", "cortex-a57", "-y",
                     "--no-tls-verify", env=inherited)
        assert r.rc == 0, r.text
        assert _label(root, name, "io.github.tbx.emulator-path") == "/usr/bin/qemu-aarch64-static"
        # tbx emulator pull without IMAGE: root's configuration names none; the user's image is not pulled
        r = root.tbx("emulator", "pull", env=inherited)
        assert r.rc == 1 and "binfmt-bad" not in r.text, r.text
        assert not plants["marker"].exists(), "root ran a file from the user's configuration"
    finally:
        shutil.rmtree(emu_dir)


def test_a_config_that_someone_else_could_change_is_refused(root, rootless, host, user_config):
    # root's own file, in a directory the user can write: refused, naming the directory and its owner
    d = Path("/root/.config/tbx")
    made = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "config.toml"
    saved = cfg.read_bytes() if cfg.exists() else None
    st = d.stat()
    try:
        cfg.write_text('default_arch = "aarch64"\n')
        os.chown(d, host.uid, host.uid)
        r = root.tbx("check", "--arch", "aarch64")
        assert r.rc == 1 and str(cfg) in r.err and f"{d} is owned by {host.user}" in r.err and "Fix:" in r.err, r.text
        os.chown(d, 0, 0)
        d.chmod(0o777)
        r = root.tbx("check", "--arch", "aarch64")
        assert r.rc == 1 and "writable by group and others" in r.err, r.text
    finally:
        os.chown(d, st.st_uid, st.st_gid)
        d.chmod(st.st_mode & 0o7777)
        if saved is None:
            cfg.unlink(missing_ok=True)
        else:
            cfg.write_bytes(saved)
        if made:
            shutil.rmtree(d)
    # the user's own file, writable by its group: refused too
    user_config('default_arch = "aarch64"\n', mode=0o664)
    r = rootless.tbx("check", "--arch", "aarch64")
    assert r.rc == 1 and "config.toml is writable by its group" in r.err, r.text


# --- nothing tbx is about to register runs on the host -------------------------------------------

def test_a_planted_emulator_in_emulator_paths_never_runs(rootless, host, plants, user_config, name, cleanup):
    for kind in ("plain", "lookalike"):
        emu_dir = _user_owned_copy(plants[kind], host, rootless)
        try:
            user_config(f'emulator_paths = ["{emu_dir}"]\nhost_emulators = false\n')
            r = rootless.tbx("check", "--arch", "aarch64", "--json")
            emu = json.loads(r.out)["arches"][0]["emulator"]
            if kind == "plain":  # not QEMU: read from the file, refused
                assert r.rc == 1 and "not QEMU" in emu["problem"], emu
            else:  # it passes for QEMU on paper; --cpu asks it for its CPU models, confined
                assert r.rc == 0 and emu["path"] == str(emu_dir / "qemu-aarch64-static"), r.text
                cleanup(rootless, name)
                r = rootless.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "--cpu", "cortex-a57",
                                 "-y", "--no-tls-verify")
                assert r.rc == 1 and "did not list its CPU models" in r.err, r.text
                assert name not in rootless.containers()
            assert not plants["marker"].exists(), f"the planted {kind} emulator ran on the host"
        finally:
            shutil.rmtree(emu_dir)


@pytest.mark.parametrize("as_root", [True, False], ids=["root", "rootless"])
def test_a_planted_emulator_image_is_refused_without_running_it(root, rootless, host, plants, as_root):
    who = root if as_root else rootless
    tag = uuid.uuid4().hex[:6]
    for kind, why in (("plain", "not QEMU: it has no 'qemu-TARGET version' text"),
                      ("lookalike", "not QEMU: run confined, '--version' printed ''")):
        ref = f"{_registry(host)}/tbx-test/planted-{kind}:{tag}"
        _oci_image(ref, {"/usr/bin/qemu-aarch64-static": plants[kind].read_bytes()})
        r = who.tbx("emulator", "pull", ref, "--no-tls-verify")
        assert r.rc == 1 and "holds no usable emulator; nothing was installed" in r.err and why in r.err, r.text
        assert not plants["marker"].exists(), f"tbx emulator pull ran the image's {kind} binary on the host"
    assert "planted" not in who.tbx("emulator", "list").out


def test_same_tag_in_two_repositories_are_two_emulators_and_a_huge_member_is_refused(rootless, host):
    other = f"{_registry(host)}/tbx-test/binfmt-other:1"
    r = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://{host['TBX_TEST_EMULATOR_REF']}", f"docker://{other}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    store = Path(rootless.home) / ".local" / "share" / "tbx" / "emulators"
    shutil.rmtree(store, ignore_errors=True)
    try:
        for ref in (host["TBX_TEST_EMULATOR_REF"], other):
            r = rootless.tbx("emulator", "pull", ref, "--no-tls-verify")
            assert r.rc == 0, r.text
        listed = json.loads(rootless.tbx("emulator", "list", "--json").out)["emulators"]
        assert sorted(e["source"] for e in listed) == sorted([host["TBX_TEST_EMULATOR_REF"], other]), listed
        assert len({e["name"] for e in listed}) == 2
        # a 1 GiB qemu-* member: refused by its size, never written out
        huge = f"{_registry(host)}/tbx-test/huge-member:1"
        _oci_image(huge, {"/usr/bin/qemu-aarch64-static": 1 << 30})
        free = shutil.disk_usage("/tmp").free
        r = rootless.tbx("emulator", "pull", huge, "--no-tls-verify", timeout=600)
        assert r.rc == 1 and "1024 MiB, larger than any emulator" in r.err, r.text
        assert shutil.disk_usage("/tmp").free > free - (200 << 20)
        assert len(json.loads(rootless.tbx("emulator", "list", "--json").out)["emulators"]) == 2
    finally:
        shutil.rmtree(store, ignore_errors=True)


# --- what a root container sees and can write ----------------------------------------------------

def _run_host_listing(runner, name: str) -> list[str]:
    r = runner.tbx("run", "-c", name, "sh", "-c", "cd /run/host && find . -mindepth 1 -maxdepth 9 \\( -path ./usr -prune -print \\) -o -print")
    assert r.rc == 0, r.text
    return sorted(r.out.split())


def test_root_containers_see_the_emulator_alone_and_survive_new_mounts(root, host, name, cleanup):
    pulled = root.tbx("emulator", "pull", host["TBX_TEST_EMULATOR_REF"], "--no-tls-verify")
    assert pulled.rc == 0, pulled.text
    emu_name = json.loads(root.tbx("emulator", "list", "--json").out)["emulators"][0]["name"]
    tmp_emu = Path(tempfile.mkdtemp(prefix="tbxt-emu-", dir="/tmp"))
    tmp_emu.chmod(0o755)
    shutil.copy("/usr/bin/qemu-aarch64-static", tmp_emu / "qemu-aarch64-static")
    mounts = [Path(f"/var/tbxt-mnt-{uuid.uuid4().hex[:6]}"), tmp_emu.parent / f"tbxt-mnt-{uuid.uuid4().hex[:6]}"]
    names = [name + "-pulled", name + "-tmp"]
    cleanup(root, *names)
    try:
        for n, choice in zip(names, (emu_name, str(tmp_emu / "qemu-aarch64-static"))):
            r = root.tbx("create", n, "--arch", "aarch64", "--image", host.index_ref, "--emulator", choice, "-y",
                         "--no-tls-verify")
            assert r.rc == 0, r.text
        listing = _run_host_listing(root, names[0])
        emu_path = f"./var/lib/tbx/emulators/{emu_name}/qemu-aarch64-static"
        assert listing == ["./usr", "./var", "./var/lib", "./var/lib/tbx", "./var/lib/tbx/emulators",
                           f"./var/lib/tbx/emulators/{emu_name}", emu_path], listing
        listing = _run_host_listing(root, names[1])
        rel = "." + str(tmp_emu)
        assert listing == ["./tmp", rel, rel + "/qemu-aarch64-static", "./usr"], listing
        # new mounts below /var and /tmp on the host: both still start, and neither sees them
        for m in mounts:
            m.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "tbxt", str(m)], check=True)
        for n in names:
            assert root.podman("stop", "-t", "0", n).rc == 0
            r = root.tbx("run", "-c", n, "uname", "-m")
            assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
    finally:
        for m in mounts:
            subprocess.run(["umount", str(m)], capture_output=True)
            if m.exists():
                m.rmdir()
        root.rm_containers(*names)
        shutil.rmtree(tmp_emu)
        root.tbx("emulator", "rm", emu_name)


def test_a_default_root_container_cannot_write_roots_home(root, host, name, cleanup):
    cleanup(root, name)
    probe = Path("/root/tbxt-setuid-probe")
    bashrc = Path("/root/.bashrc")
    before = bashrc.read_bytes() if bashrc.exists() else None
    r = root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0 and "Warning" not in r.err, r.text
    r = root.tbx("run", "-c", name, "sh", "-c",
                 f"cp /bin/sh {probe} && chmod 4755 {probe}; echo planted >> /root/.bashrc; id -u; cat /proc/self/uid_map")
    assert r.rc == 0, r.text
    uid, mapping = r.out.split("\n", 1)
    assert uid == "0" and mapping.split()[0] == "0" and mapping.split()[1] != "0", r.out  # root inside, not outside
    assert not probe.exists(), "a root container left a file in the host's /root"
    assert (bashrc.read_bytes() if bashrc.exists() else None) == before
    # root's home inside is the image's own, not the host's (README: not shared)
    r = root.tbx("run", "-c", name, "sh", "-c", "ls -A /root")
    assert ".cargo" not in r.out and probe.name in r.out, r.out
    # --userns identity: the host's home, read-write, with a one-line warning
    cleanup(root, name + "-id")
    r = root.tbx("create", name + "-id", "--arch", "aarch64", "--image", host.index_ref, "--userns", "identity", "-y",
                 "--no-tls-verify")
    assert r.rc == 0 and "Warning: --userns identity" in r.err and "trusted as root" in r.err, r.text


def test_a_root_builds_run_steps_have_a_subordinate_uid(root, host, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    mark = f"tbxt-run-{uuid.uuid4().hex[:6]}"
    (ctx / "Containerfile").write_text(f"FROM {host['TBX_TEST_BUSYBOX_REF']}\n"
                                       f"RUN sh -c 'sleep 25; : {mark}'\n")
    tag = f"localhost/tbxt-subuid:{uuid.uuid4().hex[:6]}"
    p = subprocess.Popen([TBX, "build", str(ctx), "--arch", "x86_64,aarch64", "--tag", tag,
                          "--no-tls-verify"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=root.env)
    uids = {}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(uids) < 2 and p.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if mark.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    status = Path(f"/proc/{pid}/status").read_text()
                    uids[pid] = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            except OSError:
                continue
        time.sleep(0.5)
    out = p.communicate(timeout=600)[0]
    try:
        assert p.returncode == 0, out
        sub = next(int(line.split(":")[1]) for line in Path("/etc/subuid").read_text().splitlines()
                   if line.startswith("root:"))
        assert uids, "no RUN step process was seen"
        for ids in uids.values():
            assert all(sub <= int(i) < sub + 65536 for i in ids), uids
        # the results are root's, in root's own storage
        for suffix in ("amd64", "arm64"):
            assert root.podman("image", "exists", f"{tag}-{suffix}").rc == 0
    finally:
        root.podman("manifest", "rm", tag)  # the manifest list the build assembled
        root.podman("rmi", "-f", tag, f"{tag}-amd64", f"{tag}-arm64")


# --- locks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("as_root", [True, False], ids=["root", "rootless"])
def test_a_held_catalog_lock_makes_create_and_rm_give_up_naming_the_holder(root, rootless, host, name, cleanup,
                                                                           as_root):
    who = root if as_root else rootless
    runtime = "/run" if as_root else f"/run/user/{host.uid}"
    cleanup(who, name)
    r = who.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    holder = subprocess.Popen(who.argv(["python3", "-c", "import fcntl, os, sys, time; "
                                        f"fd = os.open('{runtime}/tbx', os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
                                        "print(os.getpid(), flush=True); time.sleep(120)"]),
                              stdout=subprocess.PIPE, text=True, env=None if who.rootless else who.env)
    pid = None
    try:
        pid = int(holder.stdout.readline().strip())
        for args in (("create", name + "-2", "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify"),
                     ("rm", "-f", name)):
            start = time.monotonic()
            r = who.tbx(*args, timeout=120)
            took = time.monotonic() - start
            assert r.rc == 1 and f"locked by process {pid}" in r.err and "Fix:" in r.err, (args, r.text)
            assert took < 60, took
        assert name + "-2" not in who.containers()
    finally:
        if pid:  # (runuser's child, for the rootless user: killing runuser leaves it)
            subprocess.run(["kill", "-9", str(pid)], capture_output=True)
        holder.kill()
        holder.wait()
        who.rm_containers(name + "-2")


@pytest.mark.parametrize("as_root", [True, False], ids=["root", "rootless"])
def test_a_confined_run_sees_no_host_files_no_network_and_no_privilege(root, rootless, host, as_root):
    """runner.run_confined, as tbx uses it for -cpu help and a pulled emulator's --version: the
    static busybox of busybox-static tries to read, write and connect."""
    need(Path("/bin/busybox").is_file(), "busybox-static is not installed")
    who = root if as_root else rootless
    script = r"""
import json
from toolbx_arch import runner
from toolbx_arch.errors import TbxError
out = {}
for key, args in (("id", ["id", "-u"]), ("ls", ["ls", "-A", "/"]), ("write", ["sh", "-c", "echo x > /x"]),
                  ("read", ["ls", "/etc/passwd"]), ("net", ["nc", "-w", "2", *REGISTRY.split(":")]),
                  ("sleep", ["sleep", "30"])):
    try:
        out[key] = runner.run_confined("/bin/busybox", args, timeout=3)
    except TbxError as e:
        out[key] = str(e)
print(json.dumps(out))
"""
    script = script.replace("REGISTRY", repr(host["TBX_TEST_REGISTRY"]))  # up, and reachable from the host
    r = subprocess.run(who.argv([sys.executable, "-c", script]), capture_output=True, text=True,
                       env=None if who.rootless else who.env, cwd="/")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["id"][:2] == [0, "65534\n" if as_root else f"{host.uid}\n"], out  # root ran it as nobody
    assert out["ls"][:2] == [0, ""], out  # an empty root
    assert out["write"][0] != 0 and "Read-only file system" in out["write"][2], out
    assert out["read"][0] != 0 and "No such file" in out["read"][2], out
    assert out["net"][0] != 0, out  # no network: the registry on the host's loopback is not reachable
    assert "did not finish within 3 s when run confined" in out["sleep"], out  # and it was killed


def test_a_failed_root_build_leaves_nothing_in_the_build_storage(root, host, tmp_path):
    """Issue 29: a root build whose RUN fails leaves no image (nor container) in tbx's build storage,
    where neither podman images nor tbx list would show it."""
    from toolbx_arch import buildenv

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {host['TBX_TEST_BUSYBOX_REF']}\nRUN echo one > /one\nRUN false\n")
    r = root.tbx("build", str(ctx), "--arch", "aarch64", "--tag", f"localhost/tbxt-fail:{uuid.uuid4().hex[:6]}",
                 "--no-tls-verify", timeout=600)
    assert r.rc == 1, r.text
    from toolbx_arch import runner

    with buildenv._root({}, []) as env:  # look with the build's own podman, in its own namespace
        images = runner.run([*env.podman, "images", "--all", "--quiet"], timeout=120)
        ext = runner.run([*env.podman, "ps", "--all", "--external", "--quiet"], timeout=120)
    assert images.returncode == 0 and images.stdout.split() == [], images.stdout + images.stderr
    assert ext.stdout.split() == [], ext.stdout
