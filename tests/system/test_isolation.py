"""Issue 20: a hostile image, or a clumsy user, inside a tbx container cannot write the host, forge
tbx's status channel, make root follow a planted link, or have one tbx run clobber another.
Rootful and rootless, emulated and native."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from .conftest import TBX, Runner

PROBE = f"tbxt-probe-{uuid.uuid4().hex[:8]}"
# Each line: a label, then a shell command that must FAIL inside the container.
ATTACKS = [
    ("remount-run-host", "mount -o remount,rw,bind /run/host"),
    ("remount-run-host-usr", "mount -o remount,rw,bind /run/host/usr"),
    ("mount-proc", "mount -t proc proc /mnt"),
    ("write-etc", f"touch /run/host/etc/{PROBE}"),
    ("write-usr", f"touch /run/host/usr/{PROBE}"),
    ("write-sysctl", "echo '|/bin/false' > /run/host/proc/sys/kernel/core_pattern"),
    ("write-sys", "echo 1 > /run/host/sys/kernel/mm/ksm/run"),
    ("write-binfmt-register", "echo ':x:E::x::/bin/sh:' > /run/host/proc/sys/fs/binfmt_misc/register"),
    ("write-own-proc-sys", "echo '|/bin/false' > /proc/sys/kernel/core_pattern"),
]


def _attack_script() -> str:
    lines = [f'if ( {cmd} ) 2>/dev/null; then echo "{label}=WROTE"; else echo "{label}=refused"; fi'
             for label, cmd in ATTACKS]
    return "\n".join(lines)


@pytest.fixture(scope="module", params=[("root", "aarch64"), ("root", "x86_64"), ("rootless", "aarch64"),
                                        ("rootless", "x86_64")], ids=lambda p: f"{p[0]}-{p[1]}")
def box(request, host):
    who, arch = request.param
    runner = Runner(host, rootless=who == "rootless")
    name = f"tbxt-iso-{who}-{arch}"
    runner.rm_containers(name)
    r = runner.tbx("create", name, "--arch", arch, "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    yield runner, name, arch
    runner.rm_containers(name)


def test_nothing_inside_can_write_the_host(box):
    runner, name, arch = box
    core = open("/proc/sys/kernel/core_pattern").read()
    for how in (["sh", "-c"], ["sudo", "-n", "sh", "-c"]):
        r = runner.tbx("run", "-c", name, *how, _attack_script())
        assert r.rc == 0, r.text
        results = dict(line.split("=", 1) for line in r.out.split())
        assert set(results) == {label for label, _ in ATTACKS}, r.text
        assert all(v == "refused" for v in results.values()), (how, results)
    # still a working container: its arch, sudo, and (emulated) a private registration
    r = runner.tbx("run", "-c", name, "sh", "-c", "uname -m; sudo -n id -u")
    assert r.out.split() == [arch, "0"], r.text
    assert not os.path.exists(f"/etc/{PROBE}") and not os.path.exists(f"/usr/{PROBE}")
    assert open("/proc/sys/kernel/core_pattern").read() == core


def test_no_capability_to_mount_even_as_root(box):
    runner, name, _ = box
    r = runner.tbx("run", "-c", name, "sudo", "-n", "sh", "-c", "grep CapBnd /proc/self/status")
    bnd = int(r.out.split()[1], 16)
    assert not bnd & (1 << 21), "CAP_SYS_ADMIN must not be in the container's bounding set"


def _status(runner: Runner, name: str) -> str:
    return (f"/run/user/{runner.host.uid}" if runner.rootless else "/run") + f"/tbx/containers/{name}"


def test_status_directory_is_not_writable_by_the_containers_other_users(box):
    runner, name, _ = box
    st = os.lstat(_status(runner, name))
    assert oct(st.st_mode & 0o7777) == "0o755"
    # a uid that is neither root nor the user, inside the container
    r = runner.tbx("run", "-c", name, "sudo", "-n", "-u", "nobody", "sh", "-c",
                   "echo forged > /run/tbx/ready 2>/dev/null && echo WROTE || echo refused")
    assert r.out.strip() == "refused", r.text


def test_forged_failed_link_leaks_nothing_and_the_next_run_recovers(root, host, cleanup):
    name = f"tbxt-forge-{uuid.uuid4().hex[:6]}"
    cleanup(root, name)
    secret = f"/root/tbxt-secret-{uuid.uuid4().hex[:6]}"
    marker = f"SECRET-{uuid.uuid4().hex}"
    with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(marker + "\n")
    try:
        assert root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y",
                        "--no-tls-verify").rc == 0
        assert root.tbx("run", "-c", name, "true").rc == 0
        # root inside drops the ready file and plants `failed` as a link to a root-only host file
        r = root.tbx("run", "-c", name, "sh", "-c", f"rm -f /run/tbx/ready; ln -s {secret} /run/tbx/failed")
        assert r.rc == 0, r.text
        r = root.tbx("run", "-c", name, "uname", "-m", timeout=120)
        assert marker not in r.text
        assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
        assert "restarting" in r.err
        # and a stopped container whose `failed` is such a link starts cleanly
        root.tbx("run", "-c", name, "sh", "-c", f"ln -sf {secret} /run/tbx/failed")
        assert root.podman("stop", "-t", "2", name).rc == 0
        r = root.tbx("run", "-c", name, "true")
        assert r.rc == 0 and marker not in r.text, r.text
    finally:
        os.unlink(secret)


def test_deleted_status_directory_restarts_or_says_how(root, host, cleanup):
    import shutil

    name = f"tbxt-nostatus-{uuid.uuid4().hex[:6]}"
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    assert root.tbx("run", "-c", name, "true").rc == 0
    shutil.rmtree(_status(root, name))
    r = root.tbx("run", "-c", name, "echo", "ok", timeout=60)
    assert (r.rc, r.out.strip()) == (0, "ok") and "status directory was missing; restarting" in r.err, r.text
    # with a command running inside, a restart would end it: fail fast and say so
    bg = subprocess.Popen(root.argv([TBX, "run", "-c", name, "sleep", "30"]), env=root.env, cwd="/root",
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not json.loads(root.podman("inspect", name).out)[0].get("ExecIDs") and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(_status(root, name))
        t0 = time.monotonic()
        r = root.tbx("run", "-c", name, "true", timeout=60)
        assert r.rc == 1 and "must be restarted" in r.err and f"Fix: podman restart {name}" in r.err, r.text
        assert time.monotonic() - t0 < 15
        assert bg.poll() is None, "the running command was not disturbed"
    finally:
        bg.kill()
        bg.wait()


def test_root_with_another_users_runtime_dir_follows_no_planted_link(root, host, cleanup):
    """After a plain `su`, root keeps the user's XDG_RUNTIME_DIR. A link the user planted there
    must not make tbx chmod its target."""
    name = f"tbxt-su-{uuid.uuid4().hex[:6]}"
    cleanup(root, name)
    user_rt = f"/run/user/{host.uid}"
    target = f"/root/tbxt-target-{uuid.uuid4().hex[:6]}"
    os.mkdir(target, 0o700)
    planted = f"{user_rt}/tbx/containers"
    subprocess.run(["runuser", "-u", host.user, "--", "mkdir", "-p", planted], check=True)
    subprocess.run(["runuser", "-u", host.user, "--", "ln", "-sfn", target, f"{planted}/{name}"], check=True)
    try:
        r = root.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify",
                     env={"XDG_RUNTIME_DIR": user_rt})
        assert r.rc == 0, r.text
        r = root.tbx("run", "-c", name, "true", env={"XDG_RUNTIME_DIR": user_rt})
        assert r.rc == 0, r.text
        assert oct(os.stat(target).st_mode & 0o7777) == "0o700"
        assert os.listdir(target) == []
        assert os.path.isdir(f"/run/tbx/containers/{name}")  # root's own place
    finally:
        os.unlink(f"{planted}/{name}")
        os.rmdir(target)


def _planted_image(runner: Runner, host, tag: str, home: str) -> str:
    """A native image whose /etc/sudoers.d/tbx-user and /etc/debian_chroot link into the home."""
    img = f"localhost/tbxt-planted:{tag}"
    work = f"tbxt-planted-work-{tag}"
    assert runner.podman("pull", "-q", "--tls-verify=false", host.index_ref).rc == 0
    r = runner.podman("run", "--name", work, "--network", "host", host.index_ref, "/bin/sh", "-c",
                      f"mkdir -p /etc/sudoers.d && ln -sf {home}/{PROBE}-sudoers /etc/sudoers.d/tbx-user && "
                      f"rm -f /etc/debian_chroot && ln -s {home}/{PROBE}-chroot /etc/debian_chroot")
    assert r.rc == 0, r.text
    assert runner.podman("commit", "-q", work, img).rc == 0
    runner.rm_containers(work)
    return img


@pytest.mark.parametrize("who", ["root", "rootless"])
def test_init_refuses_links_the_image_planted(who, host, cleanup):
    runner = Runner(host, rootless=who == "rootless")
    name = f"tbxt-planted-{uuid.uuid4().hex[:6]}"
    cleanup(runner, name)
    img = _planted_image(runner, host, name, runner.home)
    try:
        assert runner.tbx("create", name, "--arch", "x86_64", "--image", img, "-y").rc == 0
        r = runner.tbx("run", "-c", name, "true", timeout=120)
        assert r.rc == 1 and "is a symbolic link in this image" in r.err and "Fix:" in r.err, r.text
        which = "/etc/debian_chroot" if who == "root" else "/etc/sudoers.d/tbx-user"
        assert which in r.err
        assert not os.path.lexists(f"{runner.home}/{PROBE}-sudoers")
        assert not os.path.lexists(f"{runner.home}/{PROBE}-chroot")
    finally:
        runner.rm_containers(name)
        runner.podman("rmi", "-f", img)


def _drop_arm64_image(root: Runner, host) -> None:
    """Remove the test index's arm64 image under every name, so a pull must fetch every blob."""
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host.index_ref}"],
                         capture_output=True, text=True, check=True).stdout
    digest = next(m["digest"] for m in json.loads(raw)["manifests"] if m["platform"]["architecture"] == "arm64")
    manifest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                               f"docker://{host.index_ref.rsplit(':', 1)[0]}@{digest}"],
                              capture_output=True, text=True, check=True).stdout
    root.podman("rmi", "-f", "--ignore", json.loads(manifest)["config"]["digest"].split(":", 1)[1])


def test_interrupted_create_spares_a_parallel_creates_image_and_container(root, host, cleanup):
    """Create A pulls through a slow proxy; meanwhile create B of the same image completes (its
    image stands at the very name A pulls to, and a container uses it). Ctrl-C on A must leave
    B's image and container alone, and leave nothing of A's."""
    from .slowproxy import SlowRegistryProxy

    a_name, b_name = (f"tbxt-par-{x}-{uuid.uuid4().hex[:6]}" for x in "ab")
    cleanup(root, a_name, b_name)
    _drop_arm64_image(root, host)  # every blob of A must come through the proxy
    with SlowRegistryProxy(host["TBX_TEST_REGISTRY"]) as proxy:
        ref = f"{proxy.address}/tbx-test/debian:12"
        dest = f"{ref}-arm64"
        a = subprocess.Popen([TBX, "create", a_name, "--arch", "aarch64", "--image", ref, "-y", "--no-tls-verify"],
                             env=root.env, cwd="/root", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        deadline = time.monotonic() + 60
        while proxy.blob_bytes < 256 * 1024 and time.monotonic() < deadline and a.poll() is None:
            time.sleep(0.1)
        assert a.poll() is None and proxy.blob_bytes >= 256 * 1024, "A should be mid-pull"
        # B completes: the same image (by the direct registry) under the same local name, and its container
        assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
        assert root.podman("tag", f"{host.index_ref}-arm64", dest).rc == 0
        r = root.tbx("create", b_name, "--arch", "aarch64", "--image", ref, "-y", "--no-tls-verify")
        assert r.rc == 0, r.text
        b_image = root.image_id(dest)
        os.killpg(a.pid, signal.SIGINT)
        out, err = a.communicate(timeout=90)
    assert a.returncode != 0
    assert b_name in root.containers() and a_name not in root.containers()
    assert root.image_id(dest) == b_image
    assert root.tbx("run", "-c", b_name, "uname", "-m").out.strip() == "aarch64"
    assert not [n for _, n in root.images_state() if "tbx-pull" in n]
    root.podman("rmi", "--ignore", dest)


@pytest.mark.parametrize("args", [
    ["create", ""], ["create", " "], ["create", "--", "-rel"], ["create", "-rel"], ["create", "a b"],
    ["run", "-c", "", "true"], ["run", "-c", " ", "true"], ["run", "-c", "-x", "true"], ["enter", ""],
    ["rm", ""], ["rm", "--", "-x"], ["rm", "-x"], ["rmi", ""], ["rmi", "--", "-x"], ["rmi", " "],
])
def test_empty_dash_led_and_blank_names_are_one_line_errors(root, args):
    before = root.containers()
    r = root.tbx(*args, "--arch", "x86_64") if args[0] == "create" and "--" not in args else root.tbx(*args)
    assert r.rc == 1, r.text
    assert "Traceback" not in r.text and "{" not in r.text, r.text
    lines = r.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Error: ") and lines[1].startswith("Fix: "), r.text
    assert root.containers() == before


@pytest.mark.parametrize("kind", ["not-utf8", "deep", "dev-zero", "fifo", "huge"])
def test_broken_configs_are_one_line_errors(root, root_config, kind):
    cfg = root_config
    if kind == "not-utf8":
        cfg.write_bytes(b'default_arch = "\xff\xfe"\n')
    elif kind == "deep":
        cfg.write_text("a = " + "[" * 100_000)
    elif kind == "dev-zero":
        cfg.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(cfg)
    else:
        cfg.write_text("# x\n" * 200_000)
    t0 = time.monotonic()
    r = root.tbx("create", "tbxt-cfg-never", "--arch", "x86_64", "--image", "localhost/tbxt-none:1", timeout=30)
    assert time.monotonic() - t0 < 20
    assert r.rc == 1 and "Traceback" not in r.text, r.text
    lines = r.err.strip().splitlines()
    # (a link to /dev/zero is refused before it is read: a file others may write is not trusted)
    assert lines[0].startswith("Error: ") and f"configuration file {cfg}" in lines[0], r.text
    assert lines[-1].startswith("Fix: "), r.text
    assert len(lines) <= 3


def test_a_sigkilled_pull_leaves_no_skopeo_behind_and_stores_nothing(root, host):
    from .slowproxy import SlowRegistryProxy

    _drop_arm64_image(root, host)
    with SlowRegistryProxy(host["TBX_TEST_REGISTRY"]) as proxy:
        ref = f"{proxy.address}/tbx-test/debian:12"
        p = subprocess.Popen([TBX, "image", "pull", ref, "--arch", "arm64", "--no-tls-verify"], env=root.env,
                             cwd="/root", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proxy.blob_bytes < 256 * 1024 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        assert p.poll() is None and proxy.blob_bytes >= 256 * 1024, "the pull should be mid-transfer"
        p.kill()
        p.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = subprocess.run(["pgrep", "-f", f"skopeo copy.*{proxy.address}"], capture_output=True, text=True)
            if not left.stdout.strip():
                break
            time.sleep(0.2)
        assert not left.stdout.strip(), "skopeo outlived its tbx"
    assert root.image_id(f"{ref}-arm64") is None
