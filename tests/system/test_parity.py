"""Issue 11: counterparts of the upstream toolbox cross-arch create/run tests that other files do
not already cover, and one test per shortcoming of that series (see tests/PARITY.md)."""

import json
import os
import subprocess

import pytest

from .conftest import TBX


def labels(runner, name):
    return json.loads(runner.podman("container", "inspect", name).out)[0]["Config"]["Labels"]


@pytest.fixture
def arm_box(root, host, cleanup):
    name = "tbxt-parity-arm"
    cleanup(root, name)
    root.rm_containers(name)
    r = root.tbx("create", name, "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    return name


# --- create ----------------------------------------------------------------------------------

def test_create_with_binfmt_style_alias_records_the_canonical_arch(arm_box, root):
    assert labels(root, arm_box)["io.github.tbx.arch"] == "aarch64"
    assert labels(root, arm_box)["io.github.tbx.oci-arch"] == "arm64"


def test_create_with_arch_matching_the_tag_suffix(root, host, cleanup):
    assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    cleanup(root, "debian-12-arm64")
    root.rm_containers("debian-12-arm64")
    r = root.tbx("create", "--arch", "aarch64", "--image", f"{host.index_ref}-arm64", "-y")
    assert r.rc == 0, r.text
    assert labels(root, "debian-12-arm64")["io.github.tbx.arch"] == "aarch64"


def test_entrypoint_carries_arch_names_not_numbers(arm_box, root):
    d = json.loads(root.podman("container", "inspect", arm_box).out)[0]
    args = d["Config"]["Cmd"]
    assert args[args.index("--arch") + 1] == "aarch64"
    assert args[args.index("--binfmt-name") + 1] == "qemu-aarch64"
    line = d["Config"]["Labels"]["io.github.tbx.binfmt"]
    assert line.startswith(":qemu-aarch64:M:0:") and line.endswith(":/run/host/usr/bin/qemu-aarch64-static:PFC")
    entry = d["Config"]["Entrypoint"]
    entry = entry if isinstance(entry, str) else entry[0]  # podman 4.3 reports a string
    assert entry.startswith("/run/host/") and "ld-linux" in entry


def test_create_for_an_arch_the_index_lacks_names_what_it_offers(root, host, name):
    before = (root.containers(), root.images_state())
    r = root.tbx("create", name, "--arch", "ppc64le", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 1 and "has no linux/ppc64le image; it offers: linux/amd64, linux/arm64" in r.err
    assert (root.containers(), root.images_state()) == before


def test_image_with_release_and_arch_is_refused(root, host, name):
    r = root.tbx("create", name, "--arch", "arm64", "--image", host.index_ref, "--release", "12", "-y")
    assert r.rc == 1 and "cannot be combined" in r.err


def _in_private_mount_ns(runner_env, mounts: list[tuple[str, str]], argv: list[str]):
    """Run argv with files bind-mounted over host paths, in a private mount namespace only."""
    binds = "; ".join(f"mount --bind {src} {dst}" for src, dst in mounts)
    script = f"set -e; mount --make-rprivate /; {binds}; exec \"$@\""
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", *argv], capture_output=True,
                          text=True, env=runner_env, cwd="/root")


@pytest.mark.parametrize("kind,expect", [
    ("script", "is not an ELF executable"),
    ("dynamic", "dynamically linked"),
])
def test_fake_or_dynamic_qemu_is_refused_before_anything_is_made(root, host, name, tmp_path, kind, expect):
    fake = tmp_path / "qemu"
    if kind == "script":
        fake.write_text("#!/bin/sh\necho I am not qemu\n")
        fake.chmod(0o755)
    else:
        fake = "/usr/bin/true"  # a dynamically linked host ELF
    before = root.containers()
    r = _in_private_mount_ns(root.env, [(str(fake), "/usr/bin/qemu-aarch64-static"),
                                        (str(fake), "/usr/libexec/qemu-binfmt/aarch64-binfmt-P")],
                             [TBX, "create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify"])
    assert r.returncode == 1, r.stderr
    assert expect in r.stderr and "Fix:" in r.stderr and "Traceback" not in r.stderr
    assert root.containers() == before
    assert os.path.getsize("/usr/bin/qemu-aarch64-static") > 1_000_000  # the host's own is untouched


def test_no_skopeo_is_a_clear_error(root, host, name, tmp_path):
    root.podman("rmi", "-f", f"{host.index_ref}-arm64")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("podman", "runuser", "sh", "uname"):
        os.symlink(f"/usr/bin/{tool}", bindir / tool)
    env = {**root.env, "PATH": f"{bindir}"}
    r = subprocess.run([TBX, "create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify"],
                       capture_output=True, text=True, env=env, cwd="/root")
    assert r.returncode == 1 and "skopeo is not installed" in r.stderr and "apt-get install -y skopeo" in r.stderr
    assert name not in root.containers()


# --- run -------------------------------------------------------------------------------------

def test_run_exit_codes_and_marker(arm_box, root):
    assert root.tbx("run", "-c", arm_box, "false").rc == 1
    assert root.tbx("run", "-c", arm_box, "sh", "-c", "exit 2").rc == 2
    assert root.tbx("run", "-c", arm_box, "test", "-f", "/run/.toolboxenv").rc == 0
    # Debian's stock prompt shows where you are: (tbx:aarch64)user@host
    assert root.tbx("run", "-c", arm_box, "cat", "/etc/debian_chroot").out.strip() == "tbx:aarch64"
    r = root.tbx("run", "-c", arm_box, "cat", "/proc/sys/fs/binfmt_misc/status")
    assert (r.rc, r.out.strip()) == (0, "enabled")
    r = root.tbx("run", "-c", arm_box, "sh", "-c", "ls /proc/sys/fs/binfmt_misc | sort | tr '\\n' ' '")
    assert r.out.split() == ["qemu-aarch64", "register", "status"]


def test_run_with_an_arch_alias_and_a_missing_command(arm_box, root):
    r = root.tbx("run", "--arch", "arm64", "uname", "-m")
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
    assert root.tbx("run", "--arch", "aarch64", "no-such-command-xyz").rc == 127
    r = root.tbx("run", "--arch", "arm65", "true")
    assert r.rc == 1 and "not supported" in r.err


def test_run_reuses_the_running_container(arm_box, root):
    assert root.tbx("run", "-c", arm_box, "true").rc == 0
    started = json.loads(root.podman("inspect", arm_box).out)[0]["State"]["StartedAt"]
    assert root.tbx("run", "-c", arm_box, "true").rc == 0
    assert json.loads(root.podman("inspect", arm_box).out)[0]["State"]["StartedAt"] == started
    logs = root.podman("logs", arm_box)
    assert (logs.out + logs.err).count("registered qemu-aarch64") == 1


def test_native_container_is_used_when_arch_is_omitted(root, host, cleanup):
    cleanup(root, "debian-12")
    root.rm_containers("debian-12")
    assert root.tbx("create", "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    r = root.tbx("run", "uname", "-m")
    assert (r.rc, r.out.strip()) == (0, "x86_64"), r.text


# --- shortcomings of the upstream series ----------------------------------------------------

def test_no_host_binfmt_entry_is_needed(arm_box, root):
    from toolbx_arch import binfmt
    from toolbx_arch.arch import resolve

    assert all(not e.enabled for e in binfmt.read_entries() if e.matches(resolve("aarch64")))
    r = root.tbx("run", "-c", arm_box, "uname", "-m")
    assert r.out.strip() == "aarch64"


def test_enter_with_arch_never_enters_or_creates_another_arch(root, host, cleanup):
    cleanup(root, "debian-12")
    root.rm_containers("debian-12", "debian-12-arm64")
    assert root.tbx("create", "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    before = root.containers()
    r = root.tbx("enter", "--arch", "arm64")
    assert r.rc == 1 and "no aarch64 tbx container" in r.err
    r = root.tbx("enter", "debian-12", "--arch", "arm64")
    assert r.rc == 1 and "is x86_64, not aarch64" in r.err
    assert root.containers() == before


def test_local_images_are_arch_checked(root, host, name):
    assert root.tbx("image", "pull", host.index_ref, "--arch", "x86_64", "--no-tls-verify").rc == 0
    liar = "localhost/tbxt-liar:1-arm64"  # where an arm64 copy of localhost/tbxt-liar:1 would live
    assert root.podman("tag", host.index_ref, liar).rc == 0
    try:
        r = root.tbx("create", name, "--arch", "arm64", "--image", "localhost/tbxt-liar:1", "-y")
        assert r.rc == 1 and "is linux/amd64 (x86_64), not linux/arm64" in r.err
        assert name not in root.containers()
    finally:
        root.podman("rmi", liar)


def test_an_s390x_image_asked_as_arm64_names_s390x(root, host):
    ref = host["TBX_TEST_S390X_REF"]
    before = root.images_state()
    r = root.tbx("image", "pull", ref, "--arch", "arm64", "--no-tls-verify")
    assert r.rc == 1 and "single-architecture linux/s390x image, not linux/arm64" in r.err
    assert "not supported" not in r.err
    assert root.images_state() == before


def test_bad_names_are_reported_before_host_checks(root, host):
    r = root.tbx("create", "Bad Name", "--arch", "s390x", "--image", host.index_ref, "-y")
    assert r.rc == 1 and "container name 'Bad Name' is not valid" in r.err
    r = root.tbx("create", "--arch", "s390x", "--distro", "fedora", "--release", "44-aarch64", "-y")
    assert r.rc == 1 and "release '44-aarch64' is not valid for fedora" in r.err


def test_emulator_reached_through_an_absolute_symlink(root, host, tmp_path, cleanup, root_config):
    name = "tbxt-symlink"
    cleanup(root, name)
    root.rm_containers(name)
    qdir = tmp_path / "qemu"
    qdir.mkdir()
    os.symlink("/usr/bin/qemu-aarch64-static", qdir / "qemu-aarch64-static")
    root_config.write_text(f'emulator_paths = ["{qdir}"]\n')
    env = {}
    r = root.tbx("check", "--arch", "aarch64", "--json", env=env)
    emu = json.loads(r.out)["arches"][0]["emulator"]
    assert emu["path"] == str(qdir / "qemu-aarch64-static")
    assert emu["in_container"] == "/run/host/usr/bin/qemu-aarch64-static"
    assert root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify",
                    env=env).rc == 0
    r = root.tbx("run", "-c", name, "uname", "-m")
    assert r.out.strip() == "aarch64", r.text


def test_emulator_missing_from_the_recorded_path_is_reported(root, host, tmp_path, cleanup, root_config):
    """Created with an emulator copy that then disappears: tbx refuses to register it, says which
    file is missing, and leaves the container stopped rather than half-started."""
    name = "tbxt-gone"
    cleanup(root, name)
    root.rm_containers(name)
    qdir = tmp_path / "qemu"
    qdir.mkdir()
    subprocess.run(["cp", "/usr/bin/qemu-aarch64-static", str(qdir)], check=True)
    root_config.write_text(f'emulator_paths = ["{qdir}"]\n')
    env = {}
    assert root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify",
                    env=env).rc == 0
    os.unlink(qdir / "qemu-aarch64-static")
    r = root.tbx("run", "-c", name, "true")
    assert r.rc == 1
    assert f"its emulator {qdir}/qemu-aarch64-static is missing on the host" in r.err and "Fix:" in r.err
    assert root.podman("inspect", "--format", "{{.State.Running}}", name).out.strip() == "false"


def test_a_killed_container_is_not_taken_for_ready(arm_box, root):
    """Readiness is the init's lock, not a file: after SIGKILL the next run restarts and
    re-registers instead of exec'ing into a dead container."""
    from toolbx_arch import status

    assert root.tbx("run", "-c", arm_box, "true").rc == 0
    assert status.is_ready(arm_box) is True
    assert root.podman("kill", arm_box).rc == 0
    assert status.is_ready(arm_box) is False
    r = root.tbx("run", "-c", arm_box, "uname", "-m")
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
