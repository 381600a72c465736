"""Pure parts of the connection support (issue 15): known_hosts matching, failure reasons,
--connection values, the configuration's [connections], what a run ships."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import tarfile

import pytest

from toolbx_arch import arch, config, nodes, remote
from toolbx_arch.errors import TbxError

NODE = nodes.Node("arm-node", "ssh://me@box.example.org:2222/run/user/1000/podman/podman.sock", "/home/me/.ssh/k")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJmZRfX2SG/cf+SfLtrFswooKS0w7P2yYTFqsqjOZaCu"


def test_a_node_is_parsed_from_its_uri():
    assert (NODE.user, NODE.host, NODE.port, NODE.scheme) == ("me", "box.example.org", 2222, "ssh")
    assert NODE.podman == ["podman", "--connection", "arm-node"]
    assert NODE.ssh_target == "ssh -p 2222 -i /home/me/.ssh/k me@box.example.org"
    assert nodes.Node("n", "ssh://root@h/run/podman/podman.sock").ssh_target == "ssh root@h"


def hashed(name: str) -> str:
    salt = os.urandom(20)
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


def test_a_missing_known_hosts_file_is_not_knowing_the_host(tmp_path):
    assert not nodes.known_host(NODE, [tmp_path / "nothing"])
    reason, fix = nodes.unknown_host_error(NODE)
    assert "known_hosts" in reason and "ssh -p 2222 -i /home/me/.ssh/k me@box.example.org" in fix and \
        fix.endswith(" true")


def test_a_node_must_present_a_key_listed_in_podmans_known_hosts(tmp_path, monkeypatch):
    """Issue 27: /etc/ssh/ssh_known_hosts does not count (podman does not read it), and a node
    presenting a key other than the listed one is refused before podman connects."""
    listed = "[box.example.org]:2222 ssh-ed25519 AAAAlisted"
    monkeypatch.setattr(nodes, "podman_known_hosts", lambda: tmp_path / "known_hosts")
    (tmp_path / "known_hosts").write_text(listed + "\n")
    monkeypatch.setattr(nodes, "presented_keys", lambda n: {("ssh-ed25519", "AAAAlisted")})
    assert nodes.verify(NODE) is None
    monkeypatch.setattr(nodes, "presented_keys", lambda n: {("ssh-ed25519", "AAAAimpostor")})
    reason, fix = nodes.verify(NODE)
    assert "not the one listed" in reason and "ssh-keygen -R" in fix
    monkeypatch.setattr(nodes, "presented_keys", lambda n: None)  # not answering: podman says why
    assert nodes.verify(NODE) is None
    (tmp_path / "known_hosts").write_text("")
    reason, _ = nodes.verify(NODE)
    assert "not in" in reason and "first use" in reason


@pytest.mark.parametrize("stderr,needle,fix", [
    ('Error: failed to connect: dial tcp 127.0.0.1:2222: connect: connection refused', "refused", "sshd"),
    ("Error: failed to connect: dial tcp: lookup box.example.org: no such host", "DNS", "connection ls"),
    ("Error: failed to connect: ssh: handshake failed: ssh: unable to authenticate, attempted methods [none "
     "publickey], no supported methods remain", "authentication", "ssh-copy-id -i /home/me/.ssh/k.pub -p 2222"),
    ("Error: failed to connect: ssh: handshake failed: knownhosts: key mismatch", "does not match",
     "ssh-keygen -R '[box.example.org]:2222'"),
    ('Error: unable to connect to Podman socket: Get "http://d/v4.3.1/libpod/_ping": ssh: rejected: connect failed '
     "(open failed)", "API socket", "podman.socket"),
    ("Error: failed to connect: dial tcp 10.0.0.9:2222: i/o timeout", "did not answer", "ssh -p 2222"),
    ("Error: something new", "something new", "podman --connection arm-node info"),
])
def test_a_failure_to_reach_a_node_gets_a_reason_and_a_fix(stderr, needle, fix):
    reason, f = nodes.classify(stderr, NODE)
    assert reason.startswith("arm-node") and needle in reason and fix in f


def test_connection_failures_are_told_from_the_commands_own_exit_125():
    assert nodes.connection_failed(125, "Cannot connect to Podman. Please verify …")
    assert nodes.connection_failed(125, "Error: failed to connect: ssh: handshake failed: EOF")
    assert not nodes.connection_failed(125, "my program failed to open a file")
    assert not nodes.connection_failed(1, "Cannot connect to Podman")


def test_connection_values():
    got = nodes.parse_pairs(["arm64=arm-node", "x86_64=big"])
    assert got == {arch.resolve("aarch64"): ["arm-node"], arch.resolve("amd64"): ["big"]}
    assert nodes.parse_pairs(["aarch64=n", "arm64=n"]) == {arch.resolve("aarch64"): ["n"]}
    # several nodes for an arch: the first that answers is used
    assert nodes.parse_pairs(["aarch64=a,b"]) == {arch.resolve("aarch64"): ["a", "b"]}
    for bad in ("aarch64", "=n", "aarch64=", "aarch64=a,arm64=b", "aarch64=a,,b"):
        with pytest.raises(TbxError):
            nodes.parse_pairs(bad.split(",") if bad.count("=") > 1 else [bad])
    with pytest.raises(TbxError) as e:
        nodes.parse_pairs(["sparc=n"])
    assert "aarch64" in e.value.message or "aarch64" in (e.value.fix or "") or "supported" in e.value.message


def test_local_and_connection_contradict():
    with pytest.raises(TbxError) as e:
        nodes.mapping([arch.resolve("aarch64")], ["aarch64=n"], True, {})
    assert "--local" in e.value.message
    assert nodes.mapping([arch.resolve("aarch64")], [], True, {"aarch64": "n"}) == {}
    with pytest.raises(TbxError) as e:
        nodes.mapping([arch.resolve("aarch64")], ["s390x=n"], False, {})
    assert "s390x" in e.value.message
    # a configured arch that is not asked for plays no part (and needs no podman)
    assert nodes.mapping([arch.resolve("aarch64")], [], False, {"s390x": "n"}) == {}


def test_the_configuration_maps_arches(tmp_path, monkeypatch, as_user):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "none.toml")
    (tmp_path / "tbx").mkdir()
    f = tmp_path / "tbx" / "config.toml"
    f.write_text('[connections]\narm64 = "arm-node"\n')
    assert config.load().connections == {"aarch64": ["arm-node"]}
    f.write_text('[connections]\narm64 = ["arm-a", "arm-b"]\n')
    assert config.load().connections == {"aarch64": ["arm-a", "arm-b"]}
    for bad in ('[connections]\nsparc = "n"\n', '[connections]\naarch64 = 3\n', 'connections = "n"\n',
                '[connections]\naarch64 = []\n', '[connections]\naarch64 = ["a", 3]\n'):
        f.write_text(bad)
        with pytest.raises(TbxError) as e:
            config.load()
        assert str(f) in e.value.message


def test_what_a_run_ships(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("bb")
    os.symlink("a.txt", tmp_path / "link")
    paths = remote.files_to_sync(str(tmp_path)).paths
    assert paths == ["d", "link", "a.txt", "d/b.txt"] or sorted(paths) == ["a.txt", "d", "d/b.txt", "link"]
    buf = io.BytesIO()

    class Keep(io.BytesIO):
        def close(self):  # write_tar closes its stream; keep the bytes
            buf.write(self.getvalue())

    write = Keep()
    remote.write_tar(str(tmp_path), paths, write)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as t:
        members = {m.name: m for m in t.getmembers()}
    assert set(members) == {"a.txt", "d", "d/b.txt", "link"}
    assert all(m.uid == 0 and m.uname == "root" for m in members.values())
    assert members["link"].issym() and members["link"].linkname == "a.txt"


def test_too_much_to_ship_is_refused_with_a_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(remote, "MAX_FILES", 3)
    for i in range(5):
        (tmp_path / f"f{i}").write_text("x")
    with pytest.raises(TbxError) as e:
        remote.files_to_sync(str(tmp_path))
    assert "--no-sync" in e.value.fix


def test_the_fast_paths_know_when_a_configuration_may_map_an_arch(tmp_path, monkeypatch, as_user):
    from toolbx_arch import execspec

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    arm, s390x = arch.resolve("aarch64"), arch.resolve("s390x")
    assert not execspec.may_map_arches(arm)
    (tmp_path / "tbx").mkdir()
    (tmp_path / "tbx" / "config.toml").write_text('[connections]\narm64 = "arm-node"\n')
    assert execspec.may_map_arches(arm) and execspec.may_map_arches()
    assert not execspec.may_map_arches(s390x)


def test_without_ssh_keyscan_a_node_is_refused_not_trusted(tmp_path, monkeypatch):
    from toolbx_arch import runner

    monkeypatch.setattr(nodes, "podman_known_hosts", lambda: tmp_path / "known_hosts")
    (tmp_path / "known_hosts").write_text("[box.example.org]:2222 ssh-ed25519 AAAAlisted\n")
    monkeypatch.setattr(runner, "which", lambda name: None if name == "ssh-keyscan" else "/usr/bin/" + name)
    reason, fix = nodes.verify(NODE)
    assert "ssh-keyscan is not installed" in reason and "openssh-client" in fix


def test_the_first_node_that_answers_is_picked_and_the_others_are_said():
    a = arch.resolve("aarch64")
    n1, n2, n3 = (nodes.Node(n, f"ssh://u@{n}/s") for n in ("a", "b", "c"))
    states = {"a": nodes.State(n1, error="a: refused", fix="start sshd"), "b": nodes.State(n2, a),
              "c": nodes.State(n3, a)}
    (use, skipped), = nodes.pick({a: [n1, n2, n3]}, states).values()
    assert [n.name for n in use] == ["b", "c"] and [s.node.name for s in skipped] == ["a"]
    states["b"] = nodes.State(n2, error="b: timeout", fix="check b")
    states["c"] = nodes.State(n3, error="c: refused", fix="check c")
    (use, skipped), = nodes.pick({a: [n1, n2, n3]}, states).values()
    assert use == [] and len(skipped) == 3
    msg, fix, details = nodes.down_error(a, skipped)
    assert msg == "none of the 3 nodes for aarch64 answers" and details.splitlines() == [
        "a: a: refused (fix: start sshd)", "b: b: timeout (fix: check b)", "c: c: refused (fix: check c)"]
