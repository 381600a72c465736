"""Issue 14: `tbx build` — multi-arch images with no root and no host binfmt entry.

The host's qemu entries are disabled for the whole suite (provisioning), so every emulated RUN
step below can only work through tbx's private registration. Each platform's /arch is read back
from the pushed index without QEMU: the layers are copied out with skopeo and read as tar files.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from .conftest import TBX

ARCHES = {"arm64": "aarch64", "s390x": "s390x", "amd64": "x86_64"}  # oci arch -> uname -m


@pytest.fixture
def ctx(host, request):
    """A build context readable by the test user, with a Containerfile FROM the busybox index."""
    d = tempfile.mkdtemp(prefix="tbxt-build-")
    os.chmod(d, 0o755)

    def write(body: str) -> str:
        with open(os.path.join(d, "Containerfile"), "w") as f:
            f.write(f"FROM {host['TBX_TEST_BUSYBOX_REF']}\n{body}\n")
        os.chmod(os.path.join(d, "Containerfile"), 0o644)
        return d

    yield write
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ref(host, root, rootless):
    """A fresh reference in the local registry; what any test stored under it (both users) goes."""
    name = f"{host['TBX_TEST_REGISTRY']}/tbx-test/built-{uuid.uuid4().hex[:8]}:1"
    yield name
    repo = name.rsplit(":", 1)[0]
    for runner in (root, rootless):
        images = runner.podman("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
        mine = [i for i in images if i.startswith(repo + ":")]
        for m in mine:
            runner.podman("manifest", "rm", m)
        mine = [i for i in runner.podman("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
                if i.startswith(repo + ":")]
        if mine:
            runner.podman("rmi", "-f", *mine)


def _skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)


def pushed_platforms(ref: str) -> dict[str, str] | None:
    """{oci arch: content of /arch} of the pushed index, read from its layers; None: no such tag."""
    r = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    if r.returncode != 0:
        assert "manifest unknown" in r.stderr or "not found" in r.stderr.lower(), r.stderr
        return None
    index = json.loads(r.stdout)
    assert "manifests" in index, index
    repo = ref.rsplit(":", 1)[0]
    out = {}
    for m in index["manifests"]:
        with tempfile.TemporaryDirectory() as d:
            c = _skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{repo}@{m['digest']}", f"dir:{d}")
            assert c.returncode == 0, c.stderr
            manifest = json.load(open(os.path.join(d, "manifest.json")))
            content = None
            for layer in manifest["layers"]:
                data = open(os.path.join(d, layer["digest"].split(":", 1)[1]), "rb").read()
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                with tarfile.open(fileobj=io.BytesIO(data)) as t:
                    for member in t.getmembers():
                        if member.name.lstrip("./") == "arch":
                            content = t.extractfile(member).read().decode().strip()
            out[m["platform"]["architecture"]] = content
    return out


def registrations(who) -> list[str]:
    """Entries in the test user's own podman namespace, wherever an instance is mounted there
    (tbx never mounts one: its builds nest a namespace of their own)."""
    if not who.rootless:
        return []
    r = who.podman("unshare", "sh", "-c",
                   "awk '$9 == \"binfmt_misc\" || $10 == \"binfmt_misc\" {print $5}' /proc/self/mountinfo")
    assert r.rc == 0, r.err
    out = []
    for mnt in r.out.split():
        if mnt == "/proc/sys/fs/binfmt_misc":
            continue  # the host's instance, inherited from the initial mount namespace
        ls = who.podman("unshare", "ls", mnt)
        out += [n for n in ls.out.split() if n not in ("register", "status")]
    return out


def copied_out(who, image: str) -> str:
    """/arch of IMAGE, read from a container created from it and never started (no QEMU runs)."""
    c = who.podman("create", image, "/bin/true")
    assert c.rc == 0, c.text
    cid = c.out.strip()
    d = tempfile.mkdtemp(prefix="tbxt-cp-")
    os.chmod(d, 0o777)  # the rootless user writes the copy
    try:
        r = who.podman("cp", f"{cid}:/arch", os.path.join(d, "arch"))
        assert r.rc == 0, r.text
        with open(os.path.join(d, "arch")) as f:
            return f.read().strip()
    finally:
        who.podman("rm", "-f", cid)
        shutil.rmtree(d, ignore_errors=True)


def assert_no_emulation(who, image: str) -> None:
    r = who.podman("run", "--rm", "--network", "host", image, "/bin/true")
    assert r.rc != 0 and "exec format error" in r.text, r.text
    assert registrations(who) == []


def test_three_arches_pushed_as_one_index(who, ctx, ref):
    d = ctx("RUN uname -m > /arch")
    r = who.tbx("build", d, "--arch", "arm64,s390x,x86_64", "--tag", ref, "--push", "--no-tls-verify", "--json",
                timeout=900)
    assert r.rc == 0, r.text
    res = json.loads(r.out)
    assert res["schema"] == 1 and res["pushed"] is True and res["index_digest"].startswith("sha256:")
    assert [(p["arch"], p["status"]) for p in res["platforms"]] == [
        ("aarch64", "ok"), ("s390x", "ok"), ("x86_64", "ok")]
    assert all(p["digest"] and p["size"] > 0 and p["seconds"] > 0 for p in res["platforms"])
    assert pushed_platforms(ref) == ARCHES
    # the per-arch images are in the builder's normal storage, under REF-<oci arch>
    for oci in ARCHES:
        assert who.image_id(f"{ref}-{oci}"), oci
    # and the same answer from the stored images: a container created, never started, /arch copied out
    assert {oci: copied_out(who, f"{ref}-{oci}") for oci in ARCHES} == ARCHES
    assert_no_emulation(who, f"{ref}-arm64")


def test_a_created_container_of_the_built_image(who, ctx, ref, cleanup, name):
    d = ctx("RUN uname -m > /arch")
    assert who.tbx("build", d, "--arch", "aarch64", "--tag", ref, "--no-tls-verify", timeout=600).rc == 0
    cleanup(who, name)
    listed = json.loads(who.tbx("list", "--images", "--json").out)["images"]
    assert {(i["image"], i["arch"]) for i in listed if i["image"].startswith(ref)} == {(f"{ref}-arm64", "aarch64")}
    r = who.tbx("create", name, "--arch", "aarch64", "--image", ref, timeout=300)
    assert r.rc == 0, r.text
    assert "Trying to pull" not in r.text and "Pulling" not in r.text, r.text  # the built image, not a pull
    r = who.tbx("run", "-c", name, "cat", "/arch")
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text


def test_two_builds_at_once_share_the_registration(who, ctx, ref):
    d = ctx("RUN uname -m > /arch && sleep 2")
    argv = [TBX, "build", d, "--arch", "aarch64", "--no-tls-verify", "--json"]
    procs = [subprocess.Popen(who.argv([*argv, "--tag", f"{ref[:-2]}:{n}"]), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd="/", env=None if who.rootless else who.env)
             for n in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err
        assert json.loads(out)["platforms"][0]["status"] == "ok"
    assert_no_emulation(who, f"{ref[:-2]}:a-arm64")


def test_one_failing_arch_pushes_nothing_unless_keep_going(root, ctx, ref):
    d = ctx('RUN uname -m > /arch && test "$(uname -m)" != s390x')
    r = root.tbx("build", d, "--arch", "aarch64,s390x", "--tag", ref, "--push", "--no-tls-verify", timeout=600)
    assert r.rc == 1
    rows = {l.split()[0]: l.split()[1] for l in r.out.splitlines() if l.split()[:1] in (["aarch64"], ["s390x"])}
    assert rows == {"aarch64": "ok", "s390x": "failed"}, r.out
    assert "s390x:" in r.err and "exit status 1" in r.err, r.err
    assert pushed_platforms(ref) is None
    r = root.tbx("build", d, "--arch", "aarch64,s390x", "--tag", ref, "--push", "--keep-going", "--no-tls-verify",
                 "--json", timeout=600)
    assert r.rc == 1, r.text
    res = json.loads(r.out)
    assert res["pushed"] is True
    assert {p["arch"]: p["status"] for p in res["platforms"]} == {"aarch64": "ok", "s390x": "failed"}
    assert pushed_platforms(ref) == {"arm64": "aarch64"}


def test_ctrl_c_leaves_no_registration_container_or_index(who, ctx, ref):
    d = ctx("RUN uname -m > /arch && sleep 60")
    p = subprocess.Popen(who.argv([TBX, "build", d, "--arch", "aarch64", "--tag", ref, "--push", "--no-tls-verify"]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/",
                         env=None if who.rootless else who.env, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in p.stdout:
        seen.append(line)
        if "sleep 60" in line or time.monotonic() > deadline:
            break
    time.sleep(3)  # the RUN step is running, under emulation
    os.killpg(p.pid, signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    assert p.returncode == 130, "".join(seen) + rest
    assert pushed_platforms(ref) is None
    ext = who.podman("ps", "-a", "--external", "--format", "{{.Names}}")
    assert "working-container" not in ext.out, ext.out  # buildah's build containers
    left = subprocess.run(["pgrep", "-af", "sleep 60$"], capture_output=True, text=True).stdout
    assert left.strip() == "", left
    assert registrations(who) == []


@pytest.mark.parametrize("args,needle", [
    (["--arch", "arm65"], "not supported"),
    (["--arch", "arm64,aarch64"], "given twice"),
    (["--arch", "arm64", "--file", "/nonexistent/Containerfile"], "does not exist"),
    (["--arch", "arm64", "--tag", "Bad Ref"], "not a valid image reference"),
    (["--arch", "arm64", "--context-is-file"], "is not a directory"),
])
def test_bad_input_builds_nothing(root, ctx, ref, args, needle):
    d = ctx("RUN uname -m > /arch")
    context = d
    if "--context-is-file" in args:
        args = [a for a in args if a != "--context-is-file"]
        context = os.path.join(d, "Containerfile")
    if "--tag" not in args:
        args = [*args, "--tag", ref]
    before = root.images_state()
    r = root.tbx("build", context, *args, "--no-tls-verify")
    assert r.rc == 1, r.text
    assert needle in r.err and "Fix:" in r.err and "Traceback" not in r.err, r.err
    assert root.images_state() == before


def test_missing_containerfile_in_context(root, ref):
    d = tempfile.mkdtemp(prefix="tbxt-build-")
    try:
        r = root.tbx("build", d, "--arch", "arm64", "--tag", ref)
        assert r.rc == 1 and "no Containerfile or Dockerfile" in r.err and "Fix:" in r.err, r.err
    finally:
        os.rmdir(d)


def test_an_entry_tbx_did_not_add_is_kept(rootless, ctx, ref):
    """The user registered aarch64 in their podman namespace themselves: tbx builds in a
    namespace of its own and leaves that entry as it was."""
    from toolbx_arch import arch, binfmt

    line = binfmt.registration_line(arch.resolve("aarch64"), "/usr/bin/qemu-aarch64-static", "PF")
    line = line.replace(":qemu-aarch64:", ":users-own-aarch64:", 1)
    mount = ('d=$XDG_RUNTIME_DIR/tbxt-binfmt; mkdir -p "$d"; '
             'grep -q " $d " /proc/self/mountinfo || mount -t binfmt_misc binfmt_misc "$d"; ')
    r = rootless.podman("unshare", "sh", "-c", mount + 'printf %s "$1" > "$d/register"', "sh", line)
    assert r.rc == 0, r.err
    try:
        d = ctx("RUN uname -m > /arch")
        r = rootless.tbx("build", d, "--arch", "aarch64", "--tag", ref, "--no-tls-verify", "--json", timeout=600)
        assert r.rc == 0, r.text
        assert registrations(rootless) == ["users-own-aarch64"]
        assert json.loads(r.out)["platforms"][0]["status"] == "ok"
    finally:
        rootless.podman("unshare", "sh", "-c", mount + 'echo -1 > "$d/users-own-aarch64"')
        # the instance now mounted in the user's namespace would hide the host's entries from
        # later tests: a new pause process gives the user a namespace without one
        rootless.podman("system", "migrate")
        shutil.rmtree(f"/run/user/{rootless.host.uid}/tbxt-binfmt", ignore_errors=True)
    assert registrations(rootless) == []


def test_a_refused_push_is_classified_and_the_build_kept(root, ctx, ref):
    d = ctx("RUN uname -m > /arch")
    bad = "127.0.0.1:1/tbx-test/nowhere:1"
    try:
        r = root.tbx("build", d, "--arch", "x86_64", "--tag", bad, "--push", "--no-tls-verify", timeout=600)
        assert r.rc == 1, r.text
        assert "refused the connection" in r.err and "Fix:" in r.err and "Traceback" not in r.err, r.err
        assert root.image_id(f"{bad}-amd64"), "the built image stays for a later push"
    finally:
        root.podman("manifest", "rm", bad)
        root.podman("rmi", "-f", f"{bad}-amd64")


def test_the_hosts_entries_apply_again_when_no_build_runs(rootless, ctx, ref):
    """An instance in the user's podman namespace would hide the host's entries from that user's
    containers for as long as the namespace lives; tbx never mounts one there. Host-entry mode:
    the host's qemu-aarch64 entry is enabled for this test and restored afterwards."""
    entry = "/proc/sys/fs/binfmt_misc/qemu-aarch64"
    if not os.path.exists(entry):
        pytest.skip("the host has no qemu-aarch64 entry to enable") if os.environ.get("CI") != "true" else \
            pytest.fail("the provisioned host has no qemu-aarch64 entry")
    was = open(entry).readline().strip()
    d = ctx("RUN uname -m > /arch")
    try:
        with open(entry, "w") as f:
            f.write("1")
        r = rootless.tbx("build", d, "--arch", "aarch64", "--tag", ref, "--no-tls-verify", timeout=600)
        assert r.rc == 0, r.text
        assert registrations(rootless) == []
        run = rootless.podman("run", "--rm", "--network", "host", f"{ref}-arm64", "/bin/true")
        assert run.rc == 0, run.text  # through the host's entry: tbx's instance is out of the way
    finally:
        with open(entry, "w") as f:
            f.write("1" if was == "enabled" else "0")
