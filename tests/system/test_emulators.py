"""Issue 16 (part): emulators from an OCI image, per user, no root and no host package: fixture
images in the local registry made of this host's static qemu binaries (a good one and a bad one),
pulled by the rootless test user with the host's qemu-*-static switched off in its config."""

import json
import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def only_pulled(rootless, host):
    """The test user's config: emulator_paths empty and the host's emulators not considered;
    no pulled emulators before and after."""
    cfg = Path(rootless.home) / ".config" / "tbx" / "config.toml"
    saved = cfg.read_bytes() if cfg.exists() else None
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("emulator_paths = []\nhost_emulators = false\n")
    for p in (cfg.parent.parent, cfg.parent, cfg):
        os.chown(p, host.uid, host.uid)
    store = Path(rootless.home) / ".local" / "share" / "tbx" / "emulators"
    shutil.rmtree(store, ignore_errors=True)
    yield store
    shutil.rmtree(store, ignore_errors=True)
    if saved is None:
        cfg.unlink()
    else:
        cfg.write_bytes(saved)


def test_a_pulled_emulator_runs_sudo_in_an_aarch64_container(rootless, host, name, cleanup, only_pulled):
    cleanup(rootless, name)
    r = rootless.tbx("check", "--arch", "aarch64", "--json")
    assert r.rc == 1, r.text  # the host's qemu-aarch64-static does not count here
    problems = json.loads(r.out)["arches"][0]["problems"]
    assert any("tbx emulator pull" in p["fix"] for p in problems), problems

    r = rootless.tbx("emulator", "pull", host["TBX_TEST_EMULATOR_REF"], "--no-tls-verify")
    assert r.rc == 0, r.text
    pulled = "127.0.0.1-" + host["TBX_TEST_EMULATOR_REF"].split(":")[1].split("/")[0] + "-tbx-test-binfmt-good-1"
    assert f"Installed emulator {pulled} " in r.out, r.out
    listed = json.loads(rootless.tbx("emulator", "list", "--json").out)
    assert listed["schema"] == 1
    (emu,) = listed["emulators"]
    assert emu["name"] == pulled and emu["arches"] == ["aarch64", "armv7", "riscv64"]
    assert emu["source"] == host["TBX_TEST_EMULATOR_REF"] and emu["digest"].startswith("sha256:")
    assert emu["qemu_version"] and emu["qemu_version"][0].isdigit()
    assert Path(emu["path"]) == only_pulled / pulled and (only_pulled / pulled / "qemu-aarch64-static").is_file()

    r = rootless.tbx("check", "--arch", "aarch64", "--json")
    assert r.rc == 0, r.text
    chosen = json.loads(r.out)["arches"][0]["emulator"]
    assert chosen["pulled"] == pulled and chosen["version"] == emu["qemu_version"]

    r = rootless.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    labels = json.loads(rootless.podman("container", "inspect", name).out)[0]["Config"]["Labels"]
    assert labels["io.github.tbx.emulator"] == pulled
    assert labels["io.github.tbx.emulator-path"] == str(only_pulled / pulled / "qemu-aarch64-static")
    r = rootless.tbx("run", "-c", name, "sudo", "-n", "id", "-u")
    assert r.rc == 0 and r.out.strip() == "0", r.text
    r = rootless.tbx("run", "-c", name, "uname", "-m")
    assert r.out.strip() == "aarch64", r.text

    # Removed, the emulator is named by the next start of the container.
    assert rootless.tbx("emulator", "rm", pulled).rc == 0
    assert rootless.podman("stop", "-t", "1", name).rc == 0
    r = rootless.tbx("run", "-c", name, "true")
    assert r.rc != 0 and f"emulator {pulled}" in r.err and "Traceback" not in r.text, r.text


def test_an_image_of_bad_emulators_is_refused_with_reasons_and_installs_nothing(rootless, host, only_pulled):
    r = rootless.tbx("emulator", "pull", host["TBX_TEST_BAD_EMULATOR_REF"], "--no-tls-verify")
    assert r.rc == 1, r.text
    assert "holds no usable emulator" in r.err and "nothing was installed" in r.err
    assert "/usr/bin/qemu-aarch64: dynamically linked" in r.err
    assert "/usr/bin/qemu-s390x-static: built for aarch64, not for this x86_64 host" in r.err
    assert json.loads(rootless.tbx("emulator", "list", "--json").out)["emulators"] == []
    assert not only_pulled.exists() or not any(only_pulled.iterdir())


def test_emulator_mistakes_are_one_clear_error(rootless, host, only_pulled):
    r = rootless.tbx("emulator", "rm", "no-such-emulator")
    assert r.rc == 1 and "no pulled emulator is named" in r.err, r.text
    r = rootless.tbx("emulator", "pull")
    assert r.rc == 1 and "no emulator_image" in r.err, r.text
    r = rootless.tbx("create", "--arch", "aarch64", "--emulator", "nope", "--image", host.index_ref)
    assert r.rc == 1 and "no pulled emulator is named 'nope'" in r.err, r.text
