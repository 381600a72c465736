"""Issue 19: correct under concurrency, interruption and deletion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import TBX, Runner


def _starts(runner: Runner, name: str) -> int:
    logs = runner.podman("logs", name)
    return (logs.out + logs.err).count("tbx-init: starting")


@pytest.mark.parametrize("arch", ["aarch64", "x86_64"])
def test_eight_concurrent_runs_on_a_stopped_container_start_it_once(root, host, cleanup, arch):
    name = f"tbxt-conc-{uuid.uuid4().hex[:6]}"
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", arch, "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    with ThreadPoolExecutor(8) as pool:
        for round_ in range(20):
            assert root.podman("stop", "-t", "1", name).rc == 0
            before = _starts(root, name)
            def one(i):  # staggered, so some look while the first one's start is under way
                time.sleep(0.04 * i)
                return root.tbx("run", "-c", name, "true", timeout=120)

            results = list(pool.map(one, range(8)))
            bad = [r.text for r in results if r.rc != 0]
            assert not bad, f"round {round_}: {bad[0]}"
            assert _starts(root, name) == before + 1, f"round {round_}: started more than once"


@pytest.mark.parametrize("phase", ["create-call", "pull"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("who", ["root", "rootless"])
def test_a_create_interrupted_at_any_point_leaves_nothing_half_made(who, sig, phase, host):
    """Signal `tbx create` after a range of delays, with the image stored (the signal lands around
    the create call) or not (it lands in the pull): each time it either finished (a complete
    container) or left no container, no image name, no API service or socket, and a retry works."""
    import glob

    runner = Runner(host, rootless=who == "rootless")
    img = f"{host.index_ref}-arm64"
    assert runner.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    image_id = runner.image_id(img)
    # Delays as fractions of a whole create on this machine, so the signals land in every step.
    t0 = time.monotonic()
    full = f"tbxt-intr-full-{uuid.uuid4().hex[:6]}"
    if phase == "pull":
        runner.podman("rmi", "-f", "--ignore", image_id)
        assert runner.tbx("create", full, "--arch", "aarch64", "--image", host.index_ref, "-y",
                          "--no-tls-verify").rc == 0
    else:
        assert runner.tbx("create", full, "--arch", "aarch64", "--image", img).rc == 0
    whole = time.monotonic() - t0
    runner.rm_containers(full)
    fractions = [0.2, 0.4, 0.55, 0.65, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0] if phase == "create-call" else [0.3, 0.6, 0.9]
    delays = [whole * f for f in fractions]
    sockets = f"/run/user/{host.uid}/tbx/podman-*.sock" if runner.rootless else "/run/tbx/podman-*.sock"
    socks_before = set(glob.glob(sockets))
    def services() -> set[str]:
        out = subprocess.run(["pgrep", "-af", "podman system service"], capture_output=True, text=True).stdout
        return {line for line in out.splitlines() if "/tbx/" in line}

    before = services()
    outcomes = set()
    for i, delay in enumerate(delays):
        name = f"tbxt-intr-{uuid.uuid4().hex[:6]}"
        if phase == "pull":
            runner.podman("rmi", "-f", "--ignore", image_id)
            argv = [TBX, "create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify"]
        else:
            argv = [TBX, "create", name, "--arch", "aarch64", "--image", img]
        try:
            p = subprocess.Popen(runner.argv(argv),
                                 env=None if runner.rootless else runner.env, cwd=runner.home,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            if runner.rootless:  # runuser is in between: signal tbx itself
                subprocess.run(["pkill", f"-{int(sig)}", "-f", f"{TBX} create {name}"])
            else:
                p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            exists = name in runner.containers()
            if p.returncode == 0:
                outcomes.add("finished")
                assert exists
                assert runner.tbx("run", "-c", name, "true").rc == 0
            else:
                outcomes.add("interrupted")
                assert not exists, f"delay {delay}: a half-made container was left ({err})"
                assert "Traceback" not in err
                if phase == "pull":
                    names = [n for _, n in runner.images_state()]
                    assert img not in names and not [n for n in names if "tbx-pull" in n], names
            assert set(glob.glob(sockets)) <= socks_before, "an API socket was left"
            assert services() <= before, "an API service outlived tbx create"
        finally:
            runner.rm_containers(name)
    assert "interrupted" in outcomes
    r = runner.tbx("create", f"tbxt-intr-retry-{os.getpid()}", "--arch", "aarch64", "--image", host.index_ref,
                   "-y", "--no-tls-verify")
    runner.rm_containers(f"tbxt-intr-retry-{os.getpid()}")
    assert r.rc == 0, r.text


def test_rmi_removes_only_what_tbx_pulled(root, host, cleanup):
    """An image tbx did not pull is refused with a fix; --all leaves it alone; a refused rmi
    changes nothing."""
    foreign = f"localhost/tbxt-foreign:{uuid.uuid4().hex[:6]}"
    assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    assert root.podman("tag", f"{host.index_ref}-arm64", foreign).rc == 0
    try:
        before = root.images_state()
        r = root.tbx("rmi", foreign)
        assert r.rc == 1 and "was not pulled by tbx" in r.err and f"Fix: Remove it with podman if you are sure: podman rmi {foreign}" in r.err
        r = root.tbx("rmi", "--force", foreign)
        assert r.rc == 1
        assert root.images_state() == before
        # a refused --force (a container tbx did not create uses the image) removes nothing at all
        other = f"tbxt-notmine-{uuid.uuid4().hex[:6]}"
        cleanup(root, other)
        assert root.podman("create", "--name", other, f"{host.index_ref}-arm64", "true").rc == 0
        mine = f"tbxt-mine-{uuid.uuid4().hex[:6]}"
        cleanup(root, mine)
        assert root.tbx("create", mine, "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
        before = (root.images_state(), sorted(root.containers()))
        r = root.tbx("rmi", "--force", f"{host.index_ref}-arm64")
        assert r.rc == 1 and "which tbx did not create" in r.err, r.text
        assert (root.images_state(), sorted(root.containers())) == before
        root.rm_containers(other, mine)
        r = root.tbx("rmi", "--all")
        assert r.rc == 0, r.text
        assert root.image_id(foreign) is not None  # same image ID, but tbx never stored this name
        assert f"{host.index_ref}-arm64" in r.out
    finally:
        root.podman("rmi", "--ignore", foreign)


def test_root_with_and_without_xdg_runtime_dir_uses_the_same_container(root, host, cleanup):
    name = f"tbxt-xdg-{uuid.uuid4().hex[:6]}"
    cleanup(root, name)
    os.makedirs("/run/user/0", mode=0o700, exist_ok=True)
    assert root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify",
                    env={"XDG_RUNTIME_DIR": "/run/user/0"}).rc == 0
    for env in ({"XDG_RUNTIME_DIR": "/run/user/0"}, {}, {"XDG_RUNTIME_DIR": "/run/user/0"}):
        r = root.tbx("run", "-c", name, "uname", "-m", env=env, timeout=60)
        assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
        assert root.podman("stop", "-t", "1", name).rc == 0


def test_containers_are_created_with_label_disable(root, host, cleanup):
    name = f"tbxt-selinux-{uuid.uuid4().hex[:6]}"
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    d = json.loads(root.podman("container", "inspect", name).out)[0]
    assert "label=disable" in (d["HostConfig"].get("SecurityOpt") or [])
