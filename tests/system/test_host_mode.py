"""Issue 16 (part): host mode, forced with TBX_BINFMT_MODE=host on this >= 6.7 kernel. The host's
own qemu-aarch64 entry (Debian's qemu-user-static: flags PF) is enabled for the test and put back
as it was afterwards, the one write to the host's binfmt_misc that the suite allows."""

import json
from pathlib import Path

import pytest

from tests.conftest import need

ENTRY = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
HOST = {"TBX_BINFMT_MODE": "host"}


@pytest.fixture
def host_entry():
    need(ENTRY.exists(), "the host has no qemu-aarch64 binfmt_misc entry (qemu-user-static registers one)")
    text = ENTRY.read_text()
    need("F" in next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags:")), ""),
         "the host's qemu-aarch64 entry has no F flag")
    was_enabled = text.splitlines()[0] == "enabled"

    def turn(on: bool) -> None:
        ENTRY.write_text("1" if on else "0")

    yield turn
    turn(was_enabled)
    assert ENTRY.read_text() == text


def test_forced_host_mode_runs_through_the_hosts_entry_and_registers_nothing(root, host, name, cleanup, host_entry):
    cleanup(root, name)
    host_entry(True)
    r = root.tbx("check", "--arch", "aarch64", "--json", env=HOST)
    assert r.rc == 0, r.text
    rep = json.loads(r.out)
    assert rep["host"]["binfmt_mode"] == "host"
    arch = rep["arches"][0]
    assert arch["binfmt_mode"] == "host" and arch["host_entry"] == "qemu-aarch64"
    assert any("lacks the C flag" in n for n in arch["notes"])  # Debian's entry: PF, so sudo would fail

    r = root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify", env=HOST)
    assert r.rc == 0, r.text
    assert "host's binfmt_misc entry qemu-aarch64" in r.out
    labels = json.loads(root.podman("container", "inspect", name).out)[0]["Config"]["Labels"]
    assert labels["io.github.tbx.binfmt-mode"] == "host" and labels["io.github.tbx.host-entry"] == "qemu-aarch64"
    assert "io.github.tbx.binfmt" not in labels  # no private registration line
    r = root.tbx("run", "-c", name, "uname", "-m")
    assert r.rc == 0 and r.out.strip() == "aarch64", r.text
    logs = root.podman("logs", name).text
    assert "binfmt mode host" in logs and "private binfmt_misc instance" not in logs, logs

    # The entry switched off: the next start says so, by name.
    host_entry(False)
    assert root.podman("stop", "-t", "1", name).rc == 0
    r = root.tbx("run", "-c", name, "true")
    assert r.rc == 1 and "qemu-aarch64, which is disabled" in r.err and "Traceback" not in r.text, r.text


def test_host_mode_without_a_usable_entry_is_a_clear_error_and_leaves_nothing(root, host, name, host_entry):
    host_entry(False)
    before = (root.containers(), root.images_state())
    r = root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify", env=HOST)
    assert r.rc == 1, r.text
    assert "no usable host binfmt_misc entry for aarch64" in r.err
    assert "update-binfmts --enable qemu-aarch64" in r.err  # this host's (Debian) way to enable it
    assert (root.containers(), root.images_state()) == before
