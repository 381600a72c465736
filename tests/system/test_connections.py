"""Issue 15: native machines through podman connections.

A real node on this host (scripts/test-node.sh): openssh-server on 127.0.0.1 only, a separate
node user with its own rootless podman API socket, key-only auth, and a podman connection for
the test user. The node is x86_64, so x86_64 goes there and aarch64 stays here, emulated under
tbx's private registration. Everything is torn down after this module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import need

from .test_build import ctx, pushed_platforms, ref  # noqa: F401 - fixtures and helpers shared with the build tests

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test-node.sh"
MARK = "shipped-" + uuid.uuid4().hex[:6]


def _node(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def node(rootless):
    need(os.geteuid() == 0, "provisioning the ssh node needs root")
    r = _node("up")
    assert r.returncode == 0, r.stderr
    facts = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
    yield facts
    r = _node("down")
    assert r.returncode == 0, r.stderr
    # torn down: no sshd and no podman service of the node user left, no connection for the test user
    assert subprocess.run(["pgrep", "-u", facts["TBX_TEST_NODE_USER"]], capture_output=True).returncode == 1
    ls = rootless.podman("system", "connection", "ls", "--format", "{{.Name}}")
    assert facts["TBX_TEST_NODE"] not in ls.out.split()


def as_node(facts, *args: str) -> subprocess.CompletedProcess:
    user = facts["TBX_TEST_NODE_USER"]
    uid = subprocess.run(["id", "-u", user], capture_output=True, text=True).stdout.strip()
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", f"HOME=/home/{user}", "PATH=/usr/bin:/bin",
                           f"XDG_RUNTIME_DIR=/run/user/{uid}", *args], capture_output=True, text=True, timeout=300,
                          cwd="/")


@pytest.fixture
def project(rootless):
    """A directory in the test user's home (local containers see it too) with a marker file."""
    d = Path(rootless.home) / f"tbxt-proj-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "marker").write_text(MARK + "\n")
    (d / "sub").mkdir()
    (d / "sub" / "deep.txt").write_text("deep\n")
    shutil.chown(d, rootless.host.user, rootless.host.user)
    for p in d.rglob("*"):
        shutil.chown(p, rootless.host.user, rootless.host.user)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def made(rootless, node):
    """Containers the test made, here and on the node; removed afterwards."""
    here: list[str] = []
    yield here
    rootless.rm_containers(*here)
    as_node(node, "podman", "rm", "--force", "--time", "0", *here)


def _run_json(r) -> dict:
    assert r.out.strip(), r.text
    return {x["arch"]: x for x in json.loads(r.out)["results"]}


def test_check_reports_the_nodes_arch_reachability_and_podman_version(rootless, node):
    name = node["TBX_TEST_NODE"]
    r = rootless.tbx("check", "--arch", "x86_64", "--arch", "aarch64", "--connection", f"x86_64={name}", "--json")
    assert r.rc == 0, r.text
    arches = {a["arch"]: a for a in json.loads(r.out)["arches"]}
    where = arches["x86_64"]["where"]
    version = as_node(node, "podman", "--version").stdout.split()[-1]
    assert where["kind"] == "remote" and where["connection"] == name, where
    assert where["reachable"] is True and where["arch"] == "x86_64" and where["podman"] == version, where
    assert arches["aarch64"]["where"] == {"kind": "local", "mode": "emulated"}
    table = rootless.tbx("check", "--arch", "x86_64", "--connection", f"x86_64={name}")
    assert f"remote native via {name} (podman {version})" in table.out, table.text


def test_the_configuration_maps_an_arch_and_local_overrides_it(rootless, node):
    cfg = Path(rootless.home) / ".config" / "tbx" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    old = cfg.read_text() if cfg.exists() else None
    cfg.write_text(f'[connections]\namd64 = "{node["TBX_TEST_NODE"]}"\n')
    os.chmod(cfg, 0o644)
    try:
        r = rootless.tbx("check", "--arch", "x86_64", "--json")
        assert json.loads(r.out)["arches"][0]["where"]["connection"] == node["TBX_TEST_NODE"], r.text
        cfg.write_text('[connections]\naarch64 = "no-such-connection"\n')
        r = rootless.tbx("run", "--arch", "aarch64", "true")
        assert r.rc != 0 and "no-such-connection" in r.err and "podman system connection add" in r.err, r.text
        assert "Traceback" not in r.err
        # tbx check: that arch's row says so; the others are checked as usual
        r = rootless.tbx("check", "--arch", "aarch64", "--arch", "x86_64", "--json")
        arches = {a["arch"]: a for a in json.loads(r.out)["arches"]}
        assert r.rc == 1 and arches["x86_64"]["ready"] is True, r.text
        assert not arches["aarch64"]["ready"] and "no-such-connection" in arches["aarch64"]["where"]["error"], r.text
        assert "podman system connection add" in arches["aarch64"]["problems"][0]["fix"]
    finally:
        if old is None:
            cfg.unlink()
        else:
            cfg.write_text(old)


def test_build_goes_to_the_node_and_the_index_has_both_platforms(rootless, node, ctx, ref):  # noqa: F811
    d = ctx("RUN uname -m > /arch")
    r = rootless.tbx("build", d, "--arch", "x86_64,aarch64", "--connection", f"x86_64={node['TBX_TEST_NODE']}",
                     "--tag", ref, "--no-tls-verify", "--push", "--json", timeout=1200)
    assert r.rc == 0, r.text
    plats = {p["arch"]: p for p in json.loads(r.out)["platforms"]}
    assert plats["x86_64"]["where"] == node["TBX_TEST_NODE"] and plats["x86_64"]["status"] == "ok", plats
    assert plats["aarch64"]["where"] == "local" and plats["aarch64"]["status"] == "ok", plats
    # built on the node: its image is in the node user's storage, and pushed from there (--push):
    # not copied here; the index has both platforms
    on_node = as_node(node, "podman", "image", "inspect", "--format", "{{.Architecture}}", f"{ref}-amd64")
    assert on_node.returncode == 0 and on_node.stdout.strip() == "amd64", on_node.stderr
    assert rootless.image_id(f"{ref}-amd64") is None, "copied here although --push pushed it from the node"
    assert plats["x86_64"]["digest"], plats
    assert pushed_platforms(ref) == {"amd64": "x86_64", "arm64": "aarch64"}
    # without --push, the node's result comes back into local storage
    table = rootless.tbx("build", d, "--arch", "x86_64", "--connection", f"x86_64={node['TBX_TEST_NODE']}",
                         "--tag", ref, "--no-tls-verify", timeout=1200)
    assert table.rc == 0 and "WHERE" in table.out and node["TBX_TEST_NODE"] in table.out, table.text
    assert rootless.image_id(f"{ref}-amd64"), "the node's build was not copied into local storage"
    as_node(node, "podman", "rmi", "--force", f"{ref}-amd64")


def test_run_ships_the_directory_and_streams_both_arches(rootless, node, project, made, host):
    conn = node["TBX_TEST_NODE"]
    args = ["run", "--arch", "x86_64,aarch64", "--connection", f"x86_64={conn}", "--image",
            host["TBX_TEST_BUSYBOX_REF"], "--create", "--no-tls-verify"]
    script = 'cat marker sub/deep.txt; uname -m; [ "$(uname -m)" = x86_64 ] && exit 3; exit 0'
    r = rootless.tbx(*args, "--json", "--", "sh", "-c", script, cwd=str(project), timeout=900)
    res = _run_json(r)
    made.extend(x["container"] for x in res.values() if x["container"])
    assert r.rc == 1, r.text  # x86_64 exits 3
    x86, arm = res["x86_64"], res["aarch64"]
    assert x86["where"] == conn and x86["stdout"].split() == [MARK, "deep", "x86_64"] and x86["exit_code"] == 3, x86
    assert arm["where"] == "local" and arm["stdout"].split() == [MARK, "deep", "aarch64"] and arm["exit_code"] == 0, arm
    # the node's container is tbx-labelled and listed; a second run reuses it and sees the new file
    listed = rootless.tbx("list", "--connection", conn, "--json")
    assert listed.rc == 0, listed.text
    rows = {c["name"]: c for c in json.loads(listed.out)["containers"]}
    assert x86["container"] in rows and rows[x86["container"]]["arch"] == "x86_64", rows
    created = as_node(node, "podman", "inspect", "--format", "{{.Created}}", x86["container"]).stdout
    (project / "marker").write_text("changed\n")
    r = rootless.tbx(*args, "--", "sh", "-c", "cat marker", cwd=str(project), timeout=600)
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert any(ln.startswith("[x86_64]") and ln.endswith("changed") for ln in lines), r.text
    assert any(ln.startswith("[aarch64]") and ln.endswith("changed") for ln in lines), r.text
    assert as_node(node, "podman", "inspect", "--format", "{{.Created}}", x86["container"]).stdout == created
    # --no-sync ships nothing: a file made here since is not there
    (project / "new.txt").write_text("new\n")
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image",
                     host["TBX_TEST_BUSYBOX_REF"], "--no-tls-verify", "--no-sync", "--", "cat", "new.txt",
                     cwd=str(project), timeout=300)
    assert r.rc == 1 and "new.txt" in r.err, r.text
    # one arch, shipped: its exit code passes through, output unprefixed
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image",
                     host["TBX_TEST_BUSYBOX_REF"], "--no-tls-verify", "--", "sh", "-c", "cat new.txt; exit 5",
                     cwd=str(project), timeout=300)
    assert r.rc == 5 and r.out.strip() == "new", r.text
    # the command's own "Error: … no such container" and exit 125 are the command's, not podman's
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image",
                     host["TBX_TEST_BUSYBOX_REF"], "--no-tls-verify", "--", "sh", "-c",
                     'echo "Error: no such container" >&2; echo after >&2; exit 125', cwd=str(project), timeout=300)
    assert r.rc == 125 and r.err.splitlines()[-2:] == ["Error: no such container", "after"], r.text


def test_a_connection_mapped_to_another_arch_is_refused(rootless, node, ctx, ref, host):  # noqa: F811
    conn = node["TBX_TEST_NODE"]
    before = as_node(node, "podman", "ps", "-a", "--format", "{{.Names}}").stdout
    r = rootless.tbx("run", "--arch", "aarch64,x86_64", "--connection", f"aarch64={conn}", "--image",
                     host["TBX_TEST_BUSYBOX_REF"], "--create", "--no-tls-verify", "--", "true")
    assert r.rc == 1 and "x86_64" in r.err and "runs x86_64" in r.err and "Traceback" not in r.err, r.text
    d = ctx("RUN true")
    b = rootless.tbx("build", d, "--arch", "aarch64", "--connection", f"aarch64={conn}", "--tag", ref,
                     "--no-tls-verify")
    assert b.rc == 1 and "runs x86_64" in b.err, b.text
    assert rootless.image_id(f"{ref}-arm64") is None
    assert as_node(node, "podman", "ps", "-a", "--format", "{{.Names}}").stdout == before
    c = rootless.tbx("check", "--arch", "aarch64", "--connection", f"aarch64={conn}", "--json")
    row = json.loads(c.out)["arches"][0]
    assert c.rc == 1 and not row["ready"] and row["where"]["arch"] == "x86_64", c.text
    assert "runs x86_64" in row["problems"][0]["problem"] and f"x86_64={conn}" in row["problems"][0]["fix"], row
    bad = rootless.tbx("run", "--arch", "aarch64", "--connection", "aarch64", "--", "true")
    assert bad.rc != 0 and "ARCH=NAME" in bad.err, bad.text


def test_an_unknown_host_key_is_refused_not_trusted(rootless, node, project):
    kh = Path(rootless.home) / ".ssh" / "known_hosts"
    saved = kh.read_text()
    kh.write_text("")
    try:
        r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={node['TBX_TEST_NODE']}", "--", "true",
                         cwd=str(project))
        assert r.rc == 1 and "known_hosts" in r.err and "ssh -p" in r.err, r.text  # tbx's refusal (README)
        assert kh.read_text() == "", "the node's key was added to known_hosts without the user's consent"
    finally:
        kh.write_text(saved)


def test_a_node_that_stops_answering_fails_only_its_arch(rootless, node, project, made, ctx, ref, host):  # noqa: F811
    # (the Debian index, not busybox: the build tests leave busybox's plain tag pulled for arm64)
    conn = node["TBX_TEST_NODE"]
    args = ["run", "--arch", "x86_64,aarch64", "--connection", f"x86_64={conn}", "--image",
            host["TBX_TEST_INDEX_REF"], "--create", "--no-tls-verify"]
    first = rootless.tbx(*args, "--json", "--", "uname", "-m", cwd=str(project), timeout=900)
    made.extend(x["container"] for x in _run_json(first).values() if x["container"])
    assert first.rc == 0, first.text
    stop = _node("stop-ssh")
    assert stop.returncode == 0, stop.stderr
    try:
        r = rootless.tbx(*args, "--json", "--", "uname", "-m", cwd=str(project), timeout=600)
        res = _run_json(r)
        assert r.rc == 1, r.text
        assert res["x86_64"]["exit_code"] is None and "refused" in res["x86_64"]["error"], res["x86_64"]
        assert "sshd" in (res["x86_64"]["fix"] or "") or "sshd" in res["x86_64"]["error"], res["x86_64"]
        assert res["aarch64"]["exit_code"] == 0 and res["aarch64"]["stdout"] == "aarch64", res["aarch64"]
        # asked for: the arch runs here instead, and says so
        fb = rootless.tbx(*args, "--fallback-local", "--json", "--", "uname", "-m", cwd=str(project), timeout=600)
        res = _run_json(fb)
        made.extend(x["container"] for x in res.values() if x["container"])
        assert fb.rc == 0, fb.text
        assert res["x86_64"]["where"] == "local" and "refused" in res["x86_64"]["fallback"], res["x86_64"]
        assert res["x86_64"]["stdout"] == "x86_64"
        check = rootless.tbx("check", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--json")
        where = json.loads(check.out)["arches"][0]["where"]
        assert check.rc == 1 and where["reachable"] is False and "refused" in where["error"], check.text
        d = ctx("RUN uname -m > /arch")
        b = rootless.tbx("build", d, "--arch", "x86_64,aarch64", "--connection", f"x86_64={conn}", "--tag", ref,
                         "--no-tls-verify", "--json", "--keep-going", timeout=900)
        plats = {p["arch"]: p for p in json.loads(b.out)["platforms"]}
        assert b.rc == 1 and plats["x86_64"]["status"] == "failed" and "refused" in plats["x86_64"]["error"], plats
        assert plats["aarch64"]["status"] == "ok", plats
    finally:
        start = _node("start-ssh")
        assert start.returncode == 0, start.stderr


@pytest.mark.parametrize("arches", ["x86_64", "x86_64,aarch64"])
def test_ctrl_c_stops_the_command_on_the_node_too(rootless, node, project, made, host, arches):
    import signal
    import time

    from .conftest import TBX

    conn = node["TBX_TEST_NODE"]
    secs = str(3000 + uuid.uuid4().int % 1000)  # a sleep this test alone runs
    p = subprocess.Popen(rootless.argv([TBX, "run", "--arch", arches, "--connection", f"x86_64={conn}", "--image",
                                        host["TBX_TEST_BUSYBOX_REF"], "--create", "--no-tls-verify", "--",
                                        "sh", "-c", f"echo started; exec sleep {secs}"]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(project),
                         start_new_session=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in p.stdout:
        seen.append(line)
        if "started" in line and (arches == "x86_64" or sum("started" in s for s in seen) == 2):
            break
        if time.monotonic() > deadline:
            break
    time.sleep(1)
    os.killpg(p.pid, signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    out = "".join(seen) + rest
    assert p.returncode == 130 and "Traceback" not in out, out
    lst = json.loads(rootless.tbx("list", "--connection", conn, "--json").out)["containers"]
    made.extend(c["name"] for c in lst)
    for c in lst:
        ps = as_node(node, "podman", "exec", c["name"], "ps", "-o", "pid,args")
        assert f"sleep {secs}" not in ps.stdout, ps.stdout
    assert subprocess.run(["pgrep", "-f", f"sleep {secs}"], capture_output=True).returncode == 1


def test_a_failing_arch_keeps_the_nodes_image_out_of_the_registry(rootless, node, ctx, ref):  # noqa: F811
    d = ctx('RUN uname -m > /arch && test "$(uname -m)" != aarch64')
    r = rootless.tbx("build", d, "--arch", "x86_64,aarch64", "--connection", f"x86_64={node['TBX_TEST_NODE']}",
                     "--tag", ref, "--no-tls-verify", "--push", "--json", timeout=1200)
    plats = {p["arch"]: p for p in json.loads(r.out)["platforms"]}
    assert r.rc == 1 and plats["x86_64"]["status"] == "ok" and plats["aarch64"]["status"] == "failed", r.text
    assert pushed_platforms(ref) is None
    inspect = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}-amd64"],
                             capture_output=True, text=True)
    assert inspect.returncode != 0, "the node pushed its arch although another arch failed"
    as_node(node, "podman", "rmi", "--force", f"{ref}-amd64")


@pytest.fixture
def impostor(rootless, node, tmp_path):
    """A second sshd on 127.0.0.1 with a host key of its own, serving the same node user (so podman
    would get through to it), and a connection 'tbxt-impostor' to it for the test user."""
    state = Path(os.environ.get("TBX_CI_STATE", "/run/tbx-ci")) / "node"
    d = tmp_path / "impostor"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_ed25519")], check=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = (state / "sshd_config").read_text()
    conf = "\n".join(f"Port {port}" if ln.startswith("Port ") else f"HostKey {d / 'host_ed25519'}"
                     if ln.startswith("HostKey ") else f"PidFile {d / 'sshd.pid'}" if ln.startswith("PidFile ") else ln
                     for ln in conf.splitlines())
    (d / "sshd_config").write_text(conf + "\n")
    subprocess.run(["/usr/sbin/sshd", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")], check=True)
    for _ in range(50):
        if (d / "sshd.pid").exists():
            break
        time.sleep(0.1)
    uid = subprocess.run(["id", "-u", node["TBX_TEST_NODE_USER"]], capture_output=True, text=True).stdout.strip()
    key = f"{rootless.home}/.ssh/tbx_node_ed25519"
    r = rootless.podman("system", "connection", "add", "--identity", key, "tbxt-impostor",
                        f"ssh://{node['TBX_TEST_NODE_USER']}@127.0.0.1:{port}/run/user/{uid}/podman/podman.sock")
    assert r.rc == 0, r.text
    real_key = " ".join((state / "host_ed25519.pub").read_text().split()[:2])
    yield {"name": "tbxt-impostor", "port": port, "real_key": real_key, "log": d / "sshd.log"}
    rootless.podman("system", "connection", "rm", "tbxt-impostor")
    subprocess.run(["kill", (d / "sshd.pid").read_text().strip()], capture_output=True)


def test_an_impostor_node_is_refused_before_podman_connects(rootless, node, impostor, project, ctx, ref):  # noqa: F811
    """Issue 27: the node's key known only from /etc/ssh/ssh_known_hosts (which podman does not
    read), no ~/.ssh/known_hosts at all, or a listed key the impostor cannot present: tbx check, run
    and build refuse before podman connects, and ~/.ssh/known_hosts stays as it was."""
    name, port = impostor["name"], impostor["port"]
    kh = Path(rootless.home) / ".ssh" / "known_hosts"
    system_kh = Path("/etc/ssh/ssh_known_hosts")
    saved, system_saved = kh.read_bytes(), system_kh.read_bytes() if system_kh.exists() else None
    line = f"[127.0.0.1]:{port} {impostor['real_key']}\n"
    commands = (("check", "--arch", "x86_64", "--connection", f"x86_64={name}"),
                ("run", "--arch", "x86_64", "--connection", f"x86_64={name}", "--", "true"),
                ("build", ctx("RUN true"), "--arch", "x86_64", "--connection", f"x86_64={name}", "--tag", ref))
    try:
        for case in ("system file only", "no known_hosts", "listed key not presented"):
            if case == "system file only":
                system_kh.write_text((system_saved or b"").decode() + line)
            elif case == "no known_hosts":
                kh.unlink()
            else:
                kh.write_bytes(saved + line.encode())
                os.chown(kh, rootless.host.uid, rootless.host.uid)
            before = kh.read_bytes() if kh.exists() else None
            for args in commands:
                r = rootless.tbx(*args, cwd=str(project), timeout=120)
                want = "is not the one listed" if case == "listed key not presented" else "is not in"
                assert r.rc != 0 and want in r.text and ("ssh -p" in r.text or "ssh-keygen -R" in r.text), \
                    (case, args, r.text)
                assert (kh.read_bytes() if kh.exists() else None) == before, (case, args, "known_hosts changed")
            if case == "system file only":
                if system_saved is None:
                    system_kh.unlink()
                else:
                    system_kh.write_bytes(system_saved)
        # nothing reached the impostor: no session ever logged in there (ssh-keyscan only asked its key)
        assert "Accepted publickey" not in impostor["log"].read_text()
    finally:
        kh.write_bytes(saved)
        os.chown(kh, rootless.host.uid, rootless.host.uid)
        if system_saved is None:
            system_kh.unlink(missing_ok=True)
        else:
            system_kh.write_bytes(system_saved)


def test_a_later_run_reuses_the_nodes_container_without_a_local_one(rootless, node, project, made, host):
    """Issue 28 (item 1): the node's container, made by a run with --image, is found again by its
    labels by a later run that has neither --image nor a local container of that arch."""
    conn = node["TBX_TEST_NODE"]
    local_x86 = [c["name"] for c in json.loads(rootless.tbx("list", "--json").out)["containers"]
                 if c["arch"] == "x86_64"]
    rootless.rm_containers(*local_x86)
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image", host.index_ref, "--",
                     "true", cwd=str(project), timeout=600)
    assert r.rc == 0, r.text
    (first,) = [c for c in json.loads(rootless.tbx("list", "--connection", conn, "--json").out)["containers"]
                if c["arch"] == "x86_64"]
    made.append(first["name"])
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--", "uname", "-m",
                     cwd=str(project), timeout=600)
    assert (r.rc, r.out.strip()) == (0, "x86_64"), r.text
    (again,) = [c for c in json.loads(rootless.tbx("list", "--connection", conn, "--json").out)["containers"]
                if c["arch"] == "x86_64"]
    assert again["id"] == first["id"], (first, again)
