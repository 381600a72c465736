"""Issue 8: one command across several architectures at once, with a per-arch result."""

import json
import signal
import subprocess
import time

import pytest

from .conftest import TBX

ARM, NATIVE = "debian-12-arm64", "debian-12"


@pytest.fixture
def pair(root, host, cleanup):
    cleanup(root, ARM, NATIVE)
    root.rm_containers(ARM, NATIVE)
    return root


def test_uname_in_each_arch_created_on_demand(pair, host):
    r = pair.tbx("run", "--arch", "aarch64,x86_64", "--image", host.index_ref, "--create", "--no-tls-verify",
                 "uname", "-m")
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert any(l.startswith("[aarch64]") and l.split()[-1] == "aarch64" for l in lines), r.out
    assert any(l.startswith("[x86_64]") and l.split()[-1] == "x86_64" for l in lines), r.out
    table = [l.split() for l in lines if l.split()[:1] in (["aarch64"], ["x86_64"])]
    assert {(t[0], t[1], t[2]) for t in table} == {("aarch64", ARM, "0"), ("x86_64", NATIVE, "0")}


def test_partial_failure_is_reported_per_arch(pair, host):
    for arch in ("aarch64", "x86_64"):
        assert pair.tbx("create", "--arch", arch, "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    cmd = ["sh", "-c", 'echo "on $(uname -m)"; test "$(uname -m)" = x86_64']
    r = pair.tbx("run", "--arch", "aarch64,x86_64", *cmd)
    assert r.rc == 1
    rows = {l.split()[0]: l.split() for l in r.out.splitlines() if l.split()[:1] in (["aarch64"], ["x86_64"])}
    assert rows["aarch64"][2] == "1" and rows["x86_64"][2] == "0"
    r = pair.tbx("run", "--arch", "aarch64,x86_64", "--json", *cmd)
    assert r.rc == 1
    d = json.loads(r.out)
    res = {x["arch"]: x for x in d["results"]}
    assert d["ok"] is False
    assert (res["aarch64"]["exit_code"], res["aarch64"]["ok"], res["aarch64"]["stdout"]) == (1, False, "on aarch64")
    assert (res["x86_64"]["exit_code"], res["x86_64"]["ok"], res["x86_64"]["stdout"]) == (0, True, "on x86_64")
    assert res["aarch64"]["container"] == ARM and res["x86_64"]["seconds"] > 0


def test_a_missing_container_fails_only_its_arch(pair, host):
    assert pair.tbx("create", "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    r = pair.tbx("run", "--arch", "aarch64,riscv64", "--json", "uname", "-m")
    assert r.rc == 1
    res = {x["arch"]: x for x in json.loads(r.out)["results"]}
    assert res["aarch64"]["exit_code"] == 0 and res["aarch64"]["stdout"] == "aarch64"
    assert res["riscv64"]["exit_code"] is None and "no riscv64 tbx container" in res["riscv64"]["error"]


def _procs(pattern: str) -> list[str]:
    r = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True)
    return [l for l in r.stdout.splitlines() if "pgrep" not in l and "podman" not in l]


def test_ctrl_c_stops_every_arch_and_leaves_no_exec_session(pair, host):
    for arch in ("aarch64", "x86_64"):
        assert pair.tbx("create", "--arch", arch, "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    proc = subprocess.Popen([TBX, "run", "--arch", "aarch64,x86_64", "sleep", "314"], env=pair.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/root")
    deadline = time.monotonic() + 60
    clients = lambda: [l for l in subprocess.run(["pgrep", "-af", "tbx-run sleep 314"], capture_output=True,
                                                 text=True).stdout.splitlines() if "podman exec" in l]
    # (a client may show twice for a moment: podman forks before it execs a helper)
    started = lambda: {n for n in (ARM, NATIVE) for l in clients() if f" {n} " in l}
    while len(started()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started() == {ARM, NATIVE}, f"both exec clients should have started: {clients()}"
    proc.send_signal(signal.SIGINT)  # possibly before the commands inside have started: tbx must cope
    proc.wait(60)
    assert proc.returncode == 130
    deadline = time.monotonic() + 20
    while _procs("sleep 314") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _procs("sleep 314")
    for n in (ARM, NATIVE):
        deadline = time.monotonic() + 15
        while (ids := pair.podman("inspect", "--format", "{{len .ExecIDs}}", n).out.strip()) != "0" \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ids == "0", (n, ids)
