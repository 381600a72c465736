"""The podman create line (isolation, binds, volumes) and ensure_running, with a fake runner."""

from __future__ import annotations

import json
import os

import pytest

from toolbx_arch import arch as archmod
from toolbx_arch import containers, execspec, hostspec, naming, runner, status
from toolbx_arch.errors import TbxError

from .fakes import FakeRunner, done

ARM = archmod.resolve("aarch64")
X86 = archmod.resolve("x86_64")


# --- the podman create line -----------------------------------------------------------------------

@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "runtime_dir", lambda: str(tmp_path))
    return hostspec.discover()


@pytest.mark.parametrize("userns", ["identity", "auto"])
def test_spec_gives_no_cap_sys_admin_and_a_minimal_read_only_run_host(rt, userns):
    user = execspec.User("alice", 1000, 1000, "alice", "/nonexistent-home", "/bin/bash")
    argv = containers.spec(name="box", image="reg/x:1-arm64", a=ARM, host_arch=X86,
                           emulator="/usr/bin/qemu-aarch64-static", user=user, userns=userns, source="reg/x:1",
                           create_id="cid", runtime=rt)
    assert argv[:2] == ["podman", "create"]
    assert "--cap-add" not in argv and "--privileged" not in argv
    assert argv[argv.index("--security-opt") + 1] == "label=disable"
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    host_vols = [v for v in vols if ":/run/host" in v]
    assert host_vols and all(v.endswith(":ro,private,bind") for v in host_vols)
    assert not any(v.startswith("/:") for v in vols), "the whole host is never shared"
    labels = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--label")
    assert labels[containers.LABEL_BINFMT].startswith(":qemu-aarch64:M:0:")
    assert labels[containers.LABEL_BINFMT].endswith(":/run/host/usr/bin/qemu-aarch64-static:PFC")
    assert labels[naming.LABEL_CREATE_ID] == "cid" and labels[naming.LABEL_ARCH] == "aarch64"
    if userns == "identity":
        assert argv[argv.index("--uidmap") + 1] == "0:0:65536"
    else:
        assert argv[argv.index("--userns") + 1] == "auto:size=65536"
    assert argv.count("--ipc") == (1 if userns == "auto" and os.path.isdir("/dev/mqueue") else 0)
    script = argv[argv.index("-c") + 1]
    assert script == hostspec.init_script_text()  # the init travels in the container's configuration
    assert argv[argv.index("--binfmt-name") + 1] == "qemu-aarch64"


@pytest.mark.parametrize("emulator", ["/var/lib/tbx/emulators/r-1/qemu-aarch64-static", "/tmp/e/qemu-aarch64-static"])
def test_an_emulator_outside_the_inits_directories_is_bound_alone(rt, emulator):
    """Issue 27: its file, never /var, /var/lib/tbx or /tmp (which would bring the rest along)."""
    user = execspec.User("alice", 1000, 1000, "alice", "/nonexistent-home", "/bin/bash")
    argv = containers.spec(name="box", image="reg/x:1-arm64", a=ARM, host_arch=X86, emulator=emulator, user=user,
                           userns="auto", source="reg/x:1", create_id="cid", runtime=rt)
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert f"{emulator}:/run/host{emulator}:ro,private,bind" in vols
    top = "/" + emulator.split("/")[1]
    assert not any(v.startswith((top + ":", os.path.dirname(emulator) + ":")) for v in vols), vols


def test_spec_of_a_native_container_registers_nothing(rt):
    user = execspec.User("alice", 1000, 1000, "alice", "/nonexistent-home", "/bin/bash")
    argv = containers.spec(name="box", image="reg/x:1", a=X86, host_arch=X86, emulator=None, user=user,
                           userns="identity", source="reg/x:1", create_id="cid", runtime=rt)
    assert "--binfmt-name" not in argv and not any(containers.LABEL_BINFMT in a for a in argv)


# --- ensure_running ---------------------------------------------------------------------------------

def _info(running: bool, **kw) -> containers.Info:
    return containers.Info(name="box", id="id1", arch="aarch64", oci_arch="arm64", image="i", running=running,
                           status="running" if running else "exited", created="", managed=True,
                           labels={containers.LABEL_BINFMT: ":qemu-aarch64:M:0:m:k:/run/host/usr/bin/qemu-aarch64-static:PFC"},
                           pid=4242 if running else 0, **kw)


def test_ensure_running_starts_registers_and_never_deletes_the_inits_files(tmp_path, monkeypatch):
    from toolbx_arch import registration

    monkeypatch.setattr(status, "runtime_dir", lambda: str(tmp_path))
    sdir, _ = status.prepare("box")
    for f in ("ready", "failed"):  # the init's own files, from an earlier start
        with open(os.path.join(sdir, f), "w") as fh:
            fh.write("old\n")
    fake = FakeRunner()
    monkeypatch.setattr(runner, "run", fake)
    states = iter([_info(False), _info(True), _info(True)])
    monkeypatch.setattr(containers, "inspect", lambda name: next(states))
    registered = []
    monkeypatch.setattr(registration, "register", lambda pid, line: registered.append(pid))
    monkeypatch.setattr(os.path, "isfile", lambda p: True)
    ready = iter([False, True])
    monkeypatch.setattr(status, "is_ready", lambda name, unlocked_ok=False: next(ready, True))
    containers.ensure_running(_info(False))
    assert fake.ran("podman", "start", "box") and len(fake.ran("podman", "start")) == 1
    assert registered == [4242]
    assert sorted(os.listdir(sdir)) == ["failed", "ready"]


def test_ensure_running_reports_the_inits_reason_when_it_stops(tmp_path, monkeypatch):
    from toolbx_arch import registration

    monkeypatch.setattr(status, "runtime_dir", lambda: str(tmp_path))
    sdir, _ = status.prepare("box")
    monkeypatch.setattr(runner, "run", FakeRunner([(["podman", "logs"], done(out="tbx-init: starting"))]))
    monkeypatch.setattr(registration, "register", lambda pid, line: None)
    monkeypatch.setattr(os.path, "isfile", lambda p: True)
    monkeypatch.setattr(status, "is_ready", lambda name, unlocked_ok=False: False)
    states = iter([_info(False), _info(True, started_at=1.0), _info(True, started_at=1.0)])

    def inspect(name):
        try:
            return next(states)
        except StopIteration:  # the init failed and the container stopped
            with open(os.path.join(sdir, "failed"), "w") as fh:
                fh.write("/etc/passwd is a symbolic link in this image\x1b[2J\n")
            return _info(False)

    monkeypatch.setattr(containers, "inspect", inspect)
    with pytest.raises(TbxError) as e:
        containers.ensure_running(_info(False))
    assert "failed to initialise: /etc/passwd is a symbolic link in this image?[2J" in e.value.message


@pytest.mark.parametrize("spec,want", [
    ("/srv", {"host": "/srv", "container": "/srv", "mode": "rw"}),
    ("/srv:/data:ro", {"host": "/srv", "container": "/data", "mode": "ro"}),
    ("/srv:ro", {"host": "/srv", "container": "/srv", "mode": "ro"}),
])
def test_volume_specs_as_podman_writes_them(spec, want):
    assert containers.parse_volume(spec) == want


@pytest.mark.parametrize("spec,why", [
    ("/:/host", "the whole host"), ("/proc:/x", "/proc"), ("/sys/kernel:/x", "/sys"), ("/dev:/x", "/dev"),
    ("/srv:/run/host/x", "the container's own or tbx's"), ("/srv:/run/tbx", "the container's own or tbx's"),
    ("/srv:/proc", "the container's own"), ("relative:/x", "not absolute"), ("/srv:x", "not absolute"),
    ("/no/such/dir:/x", "does not exist"), ("/srv:/a:/b", "is not HOST[:CONTAINER]"),
])
def test_volumes_that_break_isolation_are_refused(spec, why):
    with pytest.raises(TbxError) as e:
        containers.parse_volume(spec)
    assert why in e.value.message and e.value.fix


def test_a_volume_is_a_bind_and_a_label(rt):
    user = execspec.User("alice", 1000, 1000, "alice", "/nonexistent-home", "/bin/bash")
    v = containers.parse_volume("/srv:/data:ro")
    argv = containers.spec(name="box", image="reg/x:1", a=X86, host_arch=X86, emulator=None, user=user,
                           userns="auto", source="reg/x:1", create_id="cid", runtime=rt, volumes=[v])
    assert "/srv:/data:ro,rslave" in [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    labels = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--label")
    assert json.loads(labels[naming.LABEL_VOLUMES]) == [v]
