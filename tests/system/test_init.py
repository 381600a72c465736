"""Issue 7: the init registers the emulator in the container's private binfmt_misc (no host
entry needed: provisioning left the host's qemu entries disabled); run and enter work, sudo
works for a non-root user; the init refuses the host's instance."""

import os
import subprocess

import pytest

from toolbx_arch import binfmt, hostspec
from toolbx_arch.arch import resolve

from .conftest import TBX, Runner

LAYOUTS = ["root-identity", "root-auto", "rootless"]


@pytest.fixture(params=LAYOUTS)
def box(request, host, cleanup):
    """An aarch64 container made by `tbx create` in each user-namespace layout."""
    layout = request.param
    runner = Runner(host, rootless=layout == "rootless")
    name = f"tbxt-init-{layout}"
    cleanup(runner, name)
    runner.rm_containers(name)
    extra = ["--userns", "identity"] if layout == "root-identity" else []  # root-auto: root's default
    r = runner.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify", *extra)
    assert r.rc == 0, r.text
    return runner, name


def host_qemu_entries_disabled():
    entries = [e for e in binfmt.read_entries() if e.matches(resolve("aarch64"))]
    return all(not e.enabled for e in entries)


def test_host_has_no_enabled_aarch64_entry(host):
    assert host_qemu_entries_disabled(), "provisioning must leave the host's qemu entries disabled"


def test_run_in_foreign_container(box):
    runner, name = box
    r = runner.tbx("run", "-c", name, "uname", "-m")
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
    assert runner.tbx("run", "-c", name, "sh", "-c", "exit 7").rc == 7
    r = runner.tbx("run", "-c", name, "no-such-command-xyz")
    assert r.rc == 127
    assert runner.tbx("run", "-c", name, "/etc/hostname").rc == 126
    # The registration is private, with the C flag, and the interpreter under /run/host.
    r = runner.tbx("run", "-c", name, "cat", "/proc/sys/fs/binfmt_misc/qemu-aarch64")
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert lines[0] == "enabled"
    flags = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:"))
    # C (sudo works) implies O; F; P keeps argv[0], which programs that pick their behaviour by
    # their name need (busybox applets, "exec -a"); QEMU >= 6 reads the P flag from AT_FLAGS
    assert set(flags) == {"P", "O", "C", "F"}, flags
    assert "interpreter /run/host/usr/bin/qemu-aarch64-static" in r.out
    logs = runner.podman("logs", name)
    assert "registered qemu-aarch64 in a private binfmt_misc instance (flags POCF" in logs.out + logs.err
    r = runner.tbx("run", "-c", name, "bash", "-c", "exec -a chosen-name bash -c 'echo $0'")
    assert (r.rc, r.out.strip()) == (0, "chosen-name"), r.text


def test_sudo_works_for_the_non_root_user(rootless, host, cleanup):
    name = "tbxt-sudo"
    cleanup(rootless, name)
    rootless.rm_containers(name)
    assert rootless.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    r = rootless.tbx("run", "-c", name, "id", "-u")
    assert r.out.strip() == str(host.uid), r.text
    r = rootless.tbx("run", "-c", name, "sudo", "-n", "id", "-u")
    assert (r.rc, r.out.strip()) == (0, "0"), r.text
    # The home directory is the user's own, bind-mounted, with true ownership.
    r = rootless.tbx("run", "-c", name, "sh", "-c", 'echo hi > "$HOME/tbxt-probe" && stat -c %u "$HOME/tbxt-probe"')
    assert r.out.strip() == str(host.uid), r.text
    assert os.stat(f"/home/{host.user}/tbxt-probe").st_uid == host.uid
    os.unlink(f"/home/{host.user}/tbxt-probe")


def test_stop_and_run_again_re_registers(box):
    runner, name = box
    assert runner.tbx("run", "-c", name, "true").rc == 0
    assert runner.podman("stop", "-t", "2", name).rc == 0
    r = runner.tbx("run", "-c", name, "uname", "-m")
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
    logs = runner.podman("logs", name)
    assert (logs.out + logs.err).count("registered qemu-aarch64") == 2


@pytest.mark.parametrize("rootless_user", [False, True], ids=["root", "rootless"])
def test_enter_gives_an_interactive_foreign_shell(host, cleanup, rootless_user):
    pexpect = pytest.importorskip("pexpect")
    runner = Runner(host, rootless=rootless_user)
    name = "tbxt-enter"
    cleanup(runner, name)
    runner.rm_containers(name)
    assert runner.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    argv = runner.argv([TBX, "enter", name], {"TERM": "dumb"})
    child = pexpect.spawn(argv[0], argv[1:], env={**runner.env, "TERM": "dumb"}, cwd=runner.home,
                          encoding="utf-8", timeout=60)
    child.sendline("echo ARCH=$(uname -m) ID=$(id -u) SUDO=$(sudo -n id -u)")
    child.expect(r"ARCH=aarch64 ID=(\d+) SUDO=0")
    assert child.match.group(1) == ("0" if not rootless_user else str(host.uid))
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_registration_refuses_the_hosts_binfmt_instance(root, host):
    """A rootful container sharing the host's user namespace: its binfmt_misc would be the host's.
    tbx must refuse before writing anything (the session check proves nothing changed)."""
    from toolbx_arch import registration
    from toolbx_arch.errors import TbxError

    before = binfmt.snapshot()
    emu = "/run/host/usr/bin/qemu-aarch64-static"
    img = f"{host.index_ref}-arm64"
    assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    cname = f"tbxt-hostns-{os.getpid()}"
    rt = hostspec.discover()
    r = root.podman("run", "-d", "--name", cname, "--userns=host", "--network", "host", "-v", "/usr:/run/host/usr:ro",
                    "--entrypoint", rt.entrypoint()[0], img, "--library-path", rt.library_path,
                    "/run/host/usr/bin/sleep", "300")
    assert r.rc == 0, r.text
    try:
        pid = int(root.podman("inspect", "--format", "{{.State.Pid}}", cname).out)
        with pytest.raises(TbxError) as e:
            registration.register(pid, binfmt.registration_line(resolve("aarch64"), emu))
        assert "shares the host's user namespace" in e.value.message and "refusing to register" in e.value.message
    finally:
        root.rm_containers(cname)
    assert binfmt.snapshot() == before


def test_enter_and_run_never_pick_another_arch(root, host, name, cleanup):
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    before = root.containers()
    r = root.tbx("run", "-c", name, "--arch", "aarch64", "true")
    assert r.rc == 1 and "is x86_64, not aarch64" in r.err
    r = root.tbx("run", "--arch", "riscv64", "true")
    assert r.rc == 1 and "no riscv64 tbx container" in r.err
    assert root.containers() == before
