"""Issue 11: what a foreign (aarch64) container shares with the host, as the rootless test user:
network, DNS, user and groups, ulimits, environment, IPC, D-Bus socket, and a package install
with sudo from a local .deb."""

import json
import os
import subprocess
import textwrap

import pytest


@pytest.fixture(scope="module")
def box(host):
    from .conftest import Runner

    runner = Runner(host, rootless=True)
    name = "tbxt-runtime"
    runner.rm_containers(name)
    r = runner.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    yield runner, name
    runner.rm_containers(name)


def inside(box, *cmd, env=None):
    runner, name = box
    return runner.tbx("run", "-c", name, *cmd, env=env)


def ns_inode(pid: str, ns: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def test_host_network_namespace_and_resolv_conf(box):
    r = inside(box, "readlink", "/proc/self/ns/net")
    assert r.out.strip() == ns_inode("self", "net")
    r = inside(box, "cat", "/etc/resolv.conf")
    host_ns = [l for l in open("/etc/resolv.conf").read().splitlines() if l.startswith("nameserver")]
    assert [l for l in r.out.splitlines() if l.startswith("nameserver")] == host_ns


def test_name_resolution_through_hosts(box):
    r = inside(box, "getent", "hosts", "localhost")
    assert r.rc == 0 and ("127.0.0.1" in r.out or "::1" in r.out)


def test_ipc_namespace_is_the_hosts_where_podman_can_share_it(box):
    """Like toolbox (--ipc host); podman needs the host's /dev/mqueue for that."""
    r = inside(box, "readlink", "/proc/self/ns/ipc")
    assert r.rc == 0
    assert (r.out.strip() == ns_inode("self", "ipc")) == os.path.isdir("/dev/mqueue")


def test_user_and_groups(box, host):
    import pwd

    r = inside(box, "id")
    assert f"uid={host.uid}({host.user})" in r.out and f"gid={host.uid}" in r.out
    pw = pwd.getpwnam(host.user)
    r = inside(box, "getent", "passwd", host.user)
    assert r.out.strip().split(":")[2:] == [str(pw.pw_uid), str(pw.pw_gid), host.user, pw.pw_dir, pw.pw_shell]
    r = inside(box, "sh", "-c", 'echo "$USER $HOME $(pwd)"')
    assert r.out.split() == [host.user, f"/home/{host.user}", f"/home/{host.user}"]


def _podman_default_ulimits() -> dict[str, tuple[str, str]]:
    """containers.conf default_ulimits (what podman applies when nothing is asked)."""
    import tomllib
    from pathlib import Path

    out = {}
    files = [Path("/usr/share/containers/containers.conf"), Path("/etc/containers/containers.conf"),
             *sorted(Path("/etc/containers/containers.conf.d").glob("*.conf"))]
    for f in files:
        if f.is_file():
            for item in tomllib.loads(f.read_text()).get("containers", {}).get("default_ulimits", []):
                name, _, lim = item.partition("=")
                soft, _, hard = lim.partition(":")
                out[name] = (soft, hard or soft)
    return out


def test_ulimits_hard_and_soft(box):
    """nofile: the host's soft and hard limits. nproc: podman's configured default, because runc
    cannot raise it to the host's hard limit inside a user namespace (measured on this machine:
    'error setting rlimit type 6: operation not permitted')."""
    runner, _ = box
    host_nofile = subprocess.run(runner.argv(["bash", "-c", "ulimit -Sn; ulimit -Hn"]),
                                 capture_output=True, text=True).stdout.split()
    r = inside(box, "bash", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu")
    soft_n, hard_n, soft_u, hard_u = r.out.split()
    defaults = _podman_default_ulimits()
    assert [soft_n, hard_n] == host_nofile or (soft_n, hard_n) == defaults.get("nofile")
    assert "nproc" in defaults, "the test host configures podman's nproc default (configure-podman.sh)"
    assert (soft_u, hard_u) == defaults["nproc"]
    assert int(soft_u) >= 1024


def test_environment_variables_pass_through(box):
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "DISPLAY": ":42", "LC_TIME": "C"}
    r = inside(box, "sh", "-c", 'echo "$LANG|$TERM|$DISPLAY|$LC_TIME|$TBX_CONTAINER"', env=env)
    assert r.out.strip() == "C.UTF-8|xterm-256color|:42|C|tbxt-runtime"


def test_dbus_system_socket_is_shared_when_the_host_has_one(box):
    runner, name = box
    d = json.loads(runner.podman("container", "inspect", name).out)[0]
    dests = {m["Destination"] for m in d["Mounts"]}
    assert ("/run/dbus/system_bus_socket" in dests) == os.path.exists("/run/dbus/system_bus_socket")
    assert "/run/host/usr" in dests and "/run/host" not in dests  # only what the init needs


def test_package_install_with_sudo_from_a_local_deb(box, host, tmp_path):
    """Build a tiny arm64 .deb in the user's home and install it with sudo inside."""
    runner, name = box
    home = f"/home/{host.user}"
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr" / "bin").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(textwrap.dedent("""\
        Package: tbxt-hello
        Version: 1.0
        Architecture: arm64
        Maintainer: tbx tests <tests@tbx.invalid>
        Description: tbx package-manager smoke test
        """))
    script = pkg / "usr" / "bin" / "tbxt-hello"
    script.write_text("#!/bin/sh\necho \"hello from $(uname -m)\"\n")
    script.chmod(0o755)
    deb = f"{home}/tbxt-hello.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg), deb], check=True, capture_output=True)
    os.chmod(deb, 0o644)
    try:
        r = inside(box, "sudo", "-n", "dpkg", "-i", deb)
        assert r.rc == 0, r.text
        r = inside(box, "tbxt-hello")
        assert r.out.strip() == "hello from aarch64"
        r = inside(box, "dpkg-query", "-W", "-f", "${Architecture}", "tbxt-hello")
        assert r.out == "arm64"
    finally:
        os.unlink(deb)


def test_runtime_dir_is_shared(box, host):
    runner, _ = box
    probe = f"/run/user/{host.uid}/tbxt-probe"
    subprocess.run(runner.argv(["sh", "-c", f"echo shared > {probe}"]), check=True)
    try:
        r = inside(box, "cat", probe)
        assert r.out.strip() == "shared"
    finally:
        os.unlink(probe)
