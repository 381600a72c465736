"""Issue 28: nodes as places to work. The node of the connection tests (scripts/test-node.sh, an
x86_64 sshd node on 127.0.0.1 with its own rootless podman): results come back, a later run
reuses the node's container, a shell on the node through a real pty, several nodes for one arch,
a node lost in the middle of a command, tbx rm on a node, the exit codes the README promises, a
build that cannot assemble, and tbx's cache following podman's connections."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from .conftest import TBX
from .test_build import ctx, ref  # noqa: F401 - fixtures shared with the build tests
from .test_connections import _node, as_node, made, node, project  # noqa: F401 - the node and its fixtures

README = Path(__file__).resolve().parents[2] / "README.md"


def _node_containers(rootless, conn: str, arch: str = "x86_64") -> list[dict]:
    r = rootless.tbx("list", "--connection", conn, "--json")
    assert r.rc == 0, r.text
    return [c for c in json.loads(r.out)["containers"] if c["arch"] == arch]


@pytest.fixture
def no_local_x86(rootless):
    """No local x86_64 container: the node's own container is the only place to take an image from."""
    local = [c["name"] for c in json.loads(rootless.tbx("list", "--json").out)["containers"] if c["arch"] == "x86_64"]
    rootless.rm_containers(*local)


@pytest.fixture
def dead_connection(rootless, node):
    """A podman connection 'tbxt-down' to a port where nothing listens (the node's user and key,
    the node's host key listed for it): a node that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uid = subprocess.run(["id", "-u", node["TBX_TEST_NODE_USER"]], capture_output=True, text=True).stdout.strip()
    key = f"{rootless.home}/.ssh/tbx_node_ed25519"
    r = rootless.podman("system", "connection", "add", "--identity", key, "tbxt-down",
                        f"ssh://{node['TBX_TEST_NODE_USER']}@127.0.0.1:{port}/run/user/{uid}/podman/podman.sock")
    assert r.rc == 0, r.text
    kh = Path(rootless.home) / ".ssh" / "known_hosts"
    saved = kh.read_bytes()
    state = Path(os.environ.get("TBX_CI_STATE", "/run/tbx-ci")) / "node"
    real_key = " ".join((state / "host_ed25519.pub").read_text().split()[:2])
    kh.write_bytes(saved + f"[127.0.0.1]:{port} {real_key}\n".encode())
    yield "tbxt-down"
    kh.write_bytes(saved)
    rootless.podman("system", "connection", "rm", "tbxt-down")


def test_results_come_back_and_a_later_run_reuses_the_nodes_container(rootless, node, project, made, host,
                                                                       no_local_x86):
    conn = node["TBX_TEST_NODE"]
    for c in _node_containers(rootless, conn):  # a first use on the node: it pulls, and says so
        as_node(node, "podman", "rm", "--force", "--time", "0", c["name"])
    as_node(node, "podman", "rmi", "--force", host.index_ref)
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image", host.index_ref,
                     "--no-tls-verify", "--", "touch", "made-there", cwd=str(project), timeout=900)
    assert r.rc == 0, r.text
    assert f"{conn} is pulling {host.index_ref}" in r.err and f"{conn} pulled {host.index_ref}" in r.err, r.err
    assert (project / "made-there").exists(), r.text
    assert "1 file back from" in r.err and "made-there" in r.err, r.err
    (first,) = _node_containers(rootless, conn)
    made.append(first["name"])
    # no local x86_64 container, no --image: the same container on the node
    (project / "made-there").unlink()
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--", "sh", "-c",
                     "ls; echo out > made-there", cwd=str(project), timeout=600)
    assert r.rc == 0 and "marker" in r.out.split(), r.text
    (again,) = _node_containers(rootless, conn)
    assert again["id"] == first["id"], (first, again)
    assert (project / "made-there").read_text() == "out\n"
    # a deletion there is reported and kept here; --sync-deletions applies it
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--", "rm", "marker",
                     cwd=str(project), timeout=600)
    assert r.rc == 0 and f"deleted on {conn}, kept here: marker" in r.err, r.text
    assert (project / "marker").exists()
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--sync-deletions", "--",
                     "rm", "sub/deep.txt", cwd=str(project), timeout=600)
    assert r.rc == 0 and f"deleted here as on {conn}: sub/deep.txt" in r.err, r.text
    assert not (project / "sub" / "deep.txt").exists()
    # a local change while the command ran is kept; the node's version lands beside it
    p = subprocess.Popen(rootless.argv([TBX, "run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--",
                                        "sh", "-c", "echo started; sleep 4; echo node > marker"]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(project))
    assert p.stdout.readline().strip() == "started"
    (project / "marker").write_text("local\n")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert (project / "marker").read_text() == "local\n"
    assert (project / f"marker.from-{conn}").read_text() == "node\n"
    assert "changed here while the command ran, kept: marker" in err, err
    # --no-sync: neither direction
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--no-sync", "--",
                     "sh", "-c", f"cd {project} && touch not-back", cwd=str(project), timeout=600)
    assert r.rc == 0 and not (project / "not-back").exists(), r.text


def _read_until(fd: int, pattern: str, seen: list[str], timeout: float = 120) -> str:
    """Read the pty until ``pattern`` (a regex) appears in what came since the last call."""
    deadline = time.monotonic() + timeout
    buf = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096).decode(errors="replace")
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        seen.append(chunk)
        if re.search(pattern, buf):
            return buf
    raise AssertionError(f"{pattern!r} did not appear; the terminal showed: {''.join(seen)[-2000:]!r}")


def test_enter_opens_a_shell_on_the_node_and_brings_the_results_back(rootless, node, project, made, host,
                                                                     no_local_x86):
    import pty

    conn = node["TBX_TEST_NODE"]
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image", host.index_ref,
                     "--no-tls-verify", "--", "true", cwd=str(project), timeout=900)
    assert r.rc == 0, r.text
    made.extend(c["name"] for c in _node_containers(rootless, conn))
    argv = rootless.argv([TBX, "enter", "--arch", "x86_64", "--connection", f"x86_64={conn}"],
                         {"TERM": "xterm"})
    pid, fd = pty.fork()
    if pid == 0:  # the child: tbx on the pty, in the project directory
        os.chdir(project)
        os.execvp(argv[0], argv)
    seen: list[str] = []
    try:
        _read_until(fd, r"[#$] $", seen)                      # a prompt
        os.write(fd, b"uname -m\n")
        _read_until(fd, r"x86_64", seen)
        os.write(fd, f"cd {project} && pwd && echo from-shell > made-in-shell\n".encode())
        _read_until(fd, re.escape(str(project)) + r"\s", seen)
        os.write(fd, b"exit 3\n")
        _, status = os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rest = []
        try:
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                rest.append(chunk.decode(errors="replace"))
        except OSError:
            pass
        os.close(fd)
        seen += rest
    assert os.waitstatus_to_exitcode(status) == 3, "".join(seen)
    assert (project / "made-in-shell").read_text() == "from-shell\n", "".join(seen)
    assert "made-in-shell" in "".join(seen)  # the note saying what came back


def test_several_nodes_for_an_arch_the_first_that_answers_is_used(rootless, node, project, made, host,
                                                                  dead_connection):
    conn = node["TBX_TEST_NODE"]
    pair = f"x86_64={dead_connection},{conn}"
    args = ["--arch", "x86_64,aarch64", "--connection", pair, "--image", host["TBX_TEST_BUSYBOX_REF"], "--create",
            "--no-tls-verify"]
    r = rootless.tbx("run", *args, "--json", "--", "uname", "-m", cwd=str(project), timeout=900)
    res = {x["arch"]: x for x in json.loads(r.out)["results"]}
    made.extend(x["container"] for x in res.values() if x["container"])
    assert r.rc == 0, r.text
    x86 = res["x86_64"]
    assert x86["where"] == conn and x86["stdout"] == "x86_64", x86
    assert [s["connection"] for s in x86["skipped"]] == [dead_connection] and "refused" in x86["skipped"][0]["error"]
    table = rootless.tbx("run", *args, "--", "true", cwd=str(project), timeout=600)
    assert table.rc == 0 and f"{conn} ({dead_connection} did not answer)" in table.out, table.text
    one = rootless.tbx("run", "--arch", "x86_64", "--connection", pair, "--", "uname", "-m", cwd=str(project),
                       timeout=600)
    assert one.rc == 0 and one.out.strip() == "x86_64" and f"using {conn}" in one.err, one.text
    check = rootless.tbx("check", "--arch", "x86_64", "--connection", pair, "--json")
    where = json.loads(check.out)["arches"][0]["where"]
    assert check.rc == 0 and where["connection"] == conn and where["skipped"] == [dead_connection], where
    assert [c["connection"] for c in where["candidates"]] == [dead_connection, conn], where
    # both down: one clear error per node
    assert _node("stop-ssh").returncode == 0
    try:
        both = rootless.tbx("run", "--arch", "x86_64", "--connection", pair, "--", "true", cwd=str(project),
                            timeout=600)
        assert both.rc == 1 and "none of the 2 nodes for x86_64 answers" in both.err, both.text
        lines = both.err.splitlines()
        assert any(ln.startswith(f"{dead_connection}: ") and "refused" in ln for ln in lines), both.err
        assert any(ln.startswith(f"{conn}: ") and "refused" in ln for ln in lines), both.err
        assert "Traceback" not in both.err
    finally:
        assert _node("start-ssh").returncode == 0


def test_a_node_lost_during_a_long_command_fails_that_arch_and_the_others_finish(rootless, node, project, made,
                                                                                 host):
    conn = node["TBX_TEST_NODE"]
    secs = str(600 + uuid.uuid4().int % 100)  # if tbx did not notice the loss, the run would wait this long
    p = subprocess.Popen(rootless.argv([TBX, "run", "--arch", "x86_64,aarch64", "--connection", f"x86_64={conn}",
                                        "--image", host["TBX_TEST_BUSYBOX_REF"], "--create", "--no-tls-verify",
                                        "--", "sh", "-c",
                                        f'echo started; if [ "$(uname -m)" = x86_64 ]; then sleep {secs}; '
                                        'else sleep 15; echo finished; fi']),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(project))
    seen = []
    for line in p.stdout:  # "[x86_64] started" and "[aarch64] started"
        seen.append(line)
        if sum("started" in s for s in seen) == 2:
            break
    assert _node("stop-ssh").returncode == 0
    try:
        out, err = p.communicate(timeout=240)
    finally:
        assert _node("start-ssh").returncode == 0
        for c in _node_containers(rootless, conn):
            made.append(c["name"])
        for c in json.loads(rootless.tbx("list", "--json").out)["containers"]:
            if c["arch"] == "aarch64" and "busybox" in c["name"]:
                made.append(c["name"])
    out = "".join(seen) + out
    assert p.returncode == 1, out + err
    assert any(ln.startswith("[aarch64]") and ln.rstrip().endswith("finished") for ln in out.splitlines()), out
    x86_row = next(ln for ln in out.splitlines() if ln.startswith("x86_64 "))
    arm_row = next(ln for ln in out.splitlines() if ln.startswith("aarch64 "))
    assert " - " in x86_row and "connection was lost" in out + err and "not run again" in " ".join((out + err).split()), \
        out + err
    assert " 0 " in arm_row and arm_row.rstrip().endswith("ok"), arm_row


def test_rm_reaches_the_nodes_containers(rootless, node, project, made, host):
    conn = node["TBX_TEST_NODE"]
    for img in (host.index_ref, host["TBX_TEST_BUSYBOX_REF"]):
        r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image", img,
                         "--no-tls-verify", "--", "true", cwd=str(project), timeout=900)
        assert r.rc == 0, r.text
    names = [c["name"] for c in _node_containers(rootless, conn)]
    made.extend(names)
    assert len(names) >= 2, names
    bad = rootless.tbx("rm", "--connection", conn, "no-such-box")
    assert bad.rc == 1 and "no tbx container no-such-box" in bad.err and "tbx list --connection" in bad.err, bad.text
    r = rootless.tbx("rm", "--connection", conn, names[0])
    assert r.rc == 0 and r.out.split() == [names[0]], r.text
    assert names[0] not in [c["name"] for c in _node_containers(rootless, conn)]
    r = rootless.tbx("rm", "--connection", conn, "--all")
    assert r.rc == 0 and sorted(r.out.split()) == sorted(names[1:]), r.text
    assert _node_containers(rootless, conn) == []


def _readme_exit_codes() -> dict[str, int]:
    """The README's table of remote failures: {failure: exit code}."""
    text = README.read_text()
    section = text.split("### Exit codes of remote work", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (\d+) \|", section, re.M)
    return {what.strip(): int(code) for what, code in rows if what.strip() != "failure"}


def test_each_remote_failure_exits_as_the_readme_says(rootless, node, project, made, host):
    table = _readme_exit_codes()
    conn = node["TBX_TEST_NODE"]
    seen: dict[str, int] = {}
    run = ["run", "--arch", "x86_64"]
    seen["no such connection"] = rootless.tbx(*run, "--connection", "x86_64=tbxt-none", "--", "true",
                                              cwd=str(project)).rc
    kh = Path(rootless.home) / ".ssh" / "known_hosts"
    saved = kh.read_text()
    kh.write_text("")
    try:
        seen["unknown host key"] = rootless.tbx(*run, "--connection", f"x86_64={conn}", "--", "true",
                                                cwd=str(project)).rc
        kh.write_text(saved.replace(saved.split()[2], "AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey"))
        seen["changed host key"] = rootless.tbx(*run, "--connection", f"x86_64={conn}", "--", "true",
                                                cwd=str(project)).rc
    finally:
        kh.write_text(saved)
    seen["node of another arch"] = rootless.tbx("run", "--arch", "aarch64", "--connection", f"aarch64={conn}", "--",
                                                "true", cwd=str(project)).rc
    seen["image the node cannot pull"] = rootless.tbx(*run, "--connection", f"x86_64={conn}", "--image",
                                                      f"{host['TBX_TEST_REGISTRY']}/tbx-test/no-such-image:1",
                                                      "--no-tls-verify", "--", "true", cwd=str(project)).rc
    ok = rootless.tbx(*run, "--connection", f"x86_64={conn}", "--image", host.index_ref, "--no-tls-verify", "--",
                      "sh", "-c", "exit 7", cwd=str(project), timeout=900)
    made.extend(c["name"] for c in _node_containers(rootless, conn))
    seen["the command's own exit code"] = ok.rc
    assert _node("stop-ssh").returncode == 0
    try:
        seen["node not answering"] = rootless.tbx(*run, "--connection", f"x86_64={conn}", "--", "true",
                                                  cwd=str(project)).rc
    finally:
        assert _node("start-ssh").returncode == 0
    expected = {k: table[k] for k in seen if k != "the command's own exit code"}
    assert {k: v for k, v in seen.items() if k in expected} == expected, (seen, table)
    assert seen["the command's own exit code"] == 7 and table.get("the command's own exit code") == 7


def test_a_build_with_a_node_down_builds_nothing_unless_told_to_keep_going(rootless, node, ctx, ref):  # noqa: F811
    conn = node["TBX_TEST_NODE"]
    d = ctx("RUN uname -m > /arch")
    args = ["build", d, "--arch", "x86_64,aarch64", "--connection", f"x86_64={conn}", "--tag", ref,
            "--no-tls-verify", "--json"]
    assert _node("stop-ssh").returncode == 0
    try:
        b = rootless.tbx(*args, timeout=900)
        plats = {p["arch"]: p for p in json.loads(b.out)["platforms"]}
        assert b.rc == 1 and plats["x86_64"]["status"] == "failed" and "refused" in plats["x86_64"]["error"], plats
        assert plats["aarch64"]["status"] == "skipped" and "--keep-going" in plats["aarch64"]["error"], plats
        assert rootless.image_id(f"{ref}-arm64") is None, "an arch was built although nothing could be assembled"
        table = rootless.tbx(*args[:-1], timeout=900)
        assert table.rc == 1 and "skipped" in table.out, table.text
        kg = rootless.tbx(*args, "--keep-going", timeout=900)
        plats = {p["arch"]: p for p in json.loads(kg.out)["platforms"]}
        assert kg.rc == 1 and plats["aarch64"]["status"] == "ok" and plats["x86_64"]["status"] == "failed", plats
    finally:
        assert _node("start-ssh").returncode == 0
        rootless.podman("rmi", "--force", f"{ref}-arm64", ref)


def test_the_node_cache_follows_podmans_connections(rootless, node):
    conn = node["TBX_TEST_NODE"]
    ls = json.loads(rootless.podman("system", "connection", "ls", "--format", "json").out)
    uri = next(c["URI"] for c in ls if c["Name"] == conn)
    r = rootless.podman("system", "connection", "add", "--identity", f"{rootless.home}/.ssh/tbx_node_ed25519",
                        "tbxt-gone", uri)
    assert r.rc == 0, r.text
    cache = Path(f"/run/user/{rootless.host.uid}/tbx/nodes.json")
    try:
        r = rootless.tbx("check", "--arch", "x86_64", "--connection", "x86_64=tbxt-gone", "--json")
        assert r.rc == 0, r.text
        assert "tbxt-gone" in json.loads(cache.read_text()), "the node was not remembered"
    finally:
        rootless.podman("system", "connection", "rm", "tbxt-gone")
    r = rootless.tbx("check", "--arch", "x86_64", "--connection", "x86_64=tbxt-gone", "--json")
    row = json.loads(r.out)["arches"][0]
    assert r.rc == 1 and "there is no podman connection named 'tbxt-gone'" in row["problems"][0]["problem"], r.text
    assert "tbxt-gone" not in json.loads(cache.read_text()), "the removed connection is still in tbx's cache"
