"""tbx containers: what a container is made of (spec), finding one by name or arch, starting it
and waiting for its init, and the ``podman exec`` line that runs something in it as the user.

Look-ups, start and exec use the podman CLI through ``runner`` (no API service, no podman-py
import: ``run``/``enter`` must start fast); create/list/rm use podman-py (``podman_client``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import arch as archmod
from . import binfmt, hostspec, naming, runner
from .arch import Arch
from .errors import EXIT_ENGINE, TbxError
from .execspec import User, exec_argv as _exec_argv, invoking_user, is_ready  # noqa: F401 (re-exported)

READY_TIMEOUT = float(os.environ.get("TBX_READY_TIMEOUT", "90"))
USERNS_MODES = ("keep-id", "identity", "auto")


def status_dir(name: str) -> Path:
    """Host directory mounted at /run/tbx: the init writes `ready` or `failed` there."""
    from .execspec import status_path

    d = Path(status_path(name))
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d.parent.parent, 0o700)
    os.chmod(d.parent, 0o700)
    os.chmod(d, 0o777)  # written by the container's root, which may be any mapped uid (--userns auto)
    return d


def default_userns() -> str:
    return "identity" if os.getuid() == 0 else "keep-id"


def validate_userns(userns: str | None) -> str:
    """The user-namespace layout to use (the default for this user when None), or a TbxError."""
    userns = userns or default_userns()
    if userns not in USERNS_MODES:
        raise TbxError(f"--userns {userns!r} is not one of {', '.join(USERNS_MODES)}")
    rootless = os.getuid() != 0
    if rootless and userns != "keep-id":
        raise TbxError(f"--userns {userns} needs root; rootless containers use keep-id")
    if not rootless and userns == "keep-id":
        raise TbxError("--userns keep-id is for rootless use; as root choose identity or auto")
    return userns


def spec(*, name: str, image: str, a: Arch, host_arch: Arch, emulator_in_container: str | None,
         user: User, userns: str, source: str, create_id: str, runtime: hostspec.HostRuntime) -> dict:
    """podman-py ``containers.create`` keyword arguments for a tbx container. ``image`` is the
    local (arch-suffixed) name, ``source`` the remote reference it came from, ``userns`` a
    layout checked by ``validate_userns``."""
    emulated = archmod.needs_emulation(a, host_arch)
    init_args = ["--arch", a.name, "--user", user.name, "--uid", str(user.uid), "--gid", str(user.gid),
                 "--group", user.group, "--home", user.home, "--shell", user.shell, "--status", hostspec.STATUS_DIR]
    if emulated:
        assert emulator_in_container
        init_args += ["--emulator", emulator_in_container,
                      "--binfmt", binfmt.registration_line(a, emulator_in_container)]
    mounts = [{"type": "bind", "source": "/", "target": hostspec.HOST_PREFIX, "read_only": True,
               "propagation": "rslave"},
              {"type": "bind", "source": str(status_dir(name)), "target": hostspec.STATUS_DIR}]
    # --userns auto maps the user to an unrelated range: a shared home would be unusable there.
    if os.path.isdir(user.home) and userns != "auto":
        mounts.append({"type": "bind", "source": user.home, "target": user.home, "propagation": "rslave"})
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and not user.home.startswith(xdg):
        mounts.append({"type": "bind", "source": xdg, "target": xdg})
    if os.path.exists("/run/dbus/system_bus_socket"):
        mounts.append({"type": "bind", "source": "/run/dbus/system_bus_socket",
                       "target": "/run/dbus/system_bus_socket"})
    devices = [d for d in ("/dev/fuse", "/dev/kvm", "/dev/net/tun") if os.path.exists(d) and os.access(d, os.R_OK | os.W_OK)]
    if os.path.isdir("/dev/dri"):
        devices += [str(p) for p in sorted(Path("/dev/dri").iterdir()) if os.access(p, os.R_OK | os.W_OK)]
    kw: dict = dict(
        image=image, name=name, entrypoint=runtime.entrypoint(), command=runtime.command(init_args),
        labels={naming.LABEL_MANAGED: "true", naming.LABEL_ARCH: a.name, naming.LABEL_OCI_ARCH: a.oci_arch,
                naming.LABEL_SOURCE: source, naming.LABEL_IMAGE: image, naming.LABEL_CREATE_ID: create_id},
        network_mode="host", mounts=mounts, devices=devices, stop_timeout=5,
        environment={"container": "podman", "TBX_CONTAINER": name, "TBX_ARCH": a.name},
    )
    if os.path.isdir("/dev/mqueue"):  # podman's host IPC needs the host's mqueue mount
        kw["ipc_mode"] = "host"
    if emulated:
        kw["cap_add"] = ["SYS_ADMIN"]  # in the container's own user namespace: to mount binfmt_misc there
    if userns == "keep-id":
        kw.update(userns_mode="keep-id", user="root:root")
    elif userns == "identity":
        ident = [{"container_id": 0, "host_id": 0, "size": 65536}]
        kw.update(userns_mode="private", idmappings={"UIDMap": ident, "GIDMap": ident}, user="root:root")
    else:
        kw.update(userns_mode="auto", idmappings={"AutoUserNs": True}, user="root:root")
        # sysfs cannot be mounted afresh in a user namespace that does not own the (host's)
        # network namespace: bind the host's instead.
        mounts.append({"type": "bind", "source": "/sys", "target": "/sys", "read_only": True,
                       "propagation": "rslave"})
    return kw


def new_create_id() -> str:
    return uuid.uuid4().hex


# --- look-ups (podman CLI) -----------------------------------------------------------------------

@dataclass
class Info:
    name: str
    id: str
    arch: str
    oci_arch: str
    image: str
    running: bool
    status: str
    created: str
    managed: bool
    labels: dict


def _info_from_inspect(d: dict) -> Info:
    labels = (d.get("Config") or {}).get("Labels") or {}
    state = d.get("State") or {}
    return Info(name=d.get("Name", "").lstrip("/"), id=d["Id"], arch=labels.get(naming.LABEL_ARCH, "?"),
                oci_arch=labels.get(naming.LABEL_OCI_ARCH, "?"), image=d.get("ImageName") or d.get("Image", ""),
                running=bool(state.get("Running")), status=state.get("Status", "?"),
                created=str(d.get("Created", "")), managed=labels.get(naming.LABEL_MANAGED) == "true",
                labels=labels)


def inspect(name: str) -> Info | None:
    r = runner.run(["podman", "container", "inspect", "--format", "json", name], timeout=60)
    if r.returncode != 0:
        if "no such container" in r.stderr.lower():
            return None
        raise TbxError(f"podman could not inspect container {name}", details=r.stderr.strip()[-600:],
                       exit_code=EXIT_ENGINE)
    data = json.loads(r.stdout)
    return _info_from_inspect(data[0]) if data else None


def list_managed() -> list[dict]:
    """``podman ps -a`` rows of tbx containers (fast: one CLI call)."""
    r = runner.run(["podman", "ps", "-a", "--filter", f"label={naming.MANAGED_FILTER}", "--format", "json"],
                   timeout=60)
    if r.returncode != 0:
        raise TbxError("podman could not list containers", details=r.stderr.strip(), exit_code=EXIT_ENGINE)
    return json.loads(r.stdout or "[]")


def find(name: str | None, arch: str | None, *, image: str | None = None) -> Info:
    """The one container meant: by name (checked against --arch), else the one of that arch.

    Never picks a container of another architecture than the one asked, and never creates one.
    """
    a = archmod.resolve(arch) if arch is not None else None
    if name:
        naming.validate_container_name(name)
        info = inspect(name)
        if info is None:
            raise TbxError(f"container {name} does not exist",
                           fix=f"tbx create {name} --arch {a.name if a else 'ARCH'} --image IMAGE, or 'tbx list'")
        if not info.managed:
            raise TbxError(f"container {name} was not created by tbx", fix="Use podman or toolbox for it")
        if a and info.arch != a.name:
            raise TbxError(f"container {name} is {info.arch}, not {a.name}",
                           fix=f"Drop --arch, or use an {a.name} container (tbx list --arch {a.name})")
        return info
    if a is None:
        from .config import load

        a = archmod.resolve(load().default_arch or archmod.host().name)
    rows = [r for r in list_managed() if (r.get("Labels") or {}).get(naming.LABEL_ARCH) == a.name]
    if image:
        rows = [r for r in rows if (r.get("Labels") or {}).get(naming.LABEL_SOURCE) == str(naming.normalize(image))
                or r.get("Image") == image]
    names = sorted(r["Names"][0] for r in rows)
    if not names:
        raise TbxError(f"there is no {a.name} tbx container",
                       fix=f"Create one: tbx create --arch {a.name} --image IMAGE")
    if len(names) > 1:
        raise TbxError(f"there are several {a.name} containers: {', '.join(names)}",
                       fix=f"Name one: tbx enter {names[0]}  (or tbx run -c {names[0]} …)")
    info = inspect(names[0])
    if info is None:
        raise TbxError(f"container {names[0]} disappeared")
    return info


# --- start and wait for the init ------------------------------------------------------------

def _logs_tail(name: str, lines: int = 15) -> str:
    r = runner.run(["podman", "logs", "--tail", str(lines), name], timeout=30)
    return ((r.stdout or "") + (r.stderr or "")).strip()


def _ready(info: Info, sdir: Path) -> bool:
    state = is_ready(info.name)
    return state is True or (state is None and (sdir / "ready").exists())


def ensure_running(info: Info) -> None:
    """Start the container when needed and wait until its init says ready (or failed)."""
    sdir = status_dir(info.name)
    failed = sdir / "failed"
    if info.running and _ready(info, sdir):
        return
    if not info.running:
        for f in (sdir / "ready", failed):
            f.unlink(missing_ok=True)
        r = runner.run(["podman", "start", info.name], timeout=120)
        if r.returncode != 0:
            raise TbxError(f"container {info.name} could not be started", details=r.stderr.strip()[-800:],
                           exit_code=EXIT_ENGINE)
    deadline = time.monotonic() + READY_TIMEOUT
    delay = 0.005
    while not _ready(info, sdir):
        if failed.exists():
            why = failed.read_text().strip()
            raise TbxError(f"container {info.name} failed to initialise: {why}",
                           details=_logs_tail(info.name), fix=f"See: podman logs {info.name}")
        if time.monotonic() > deadline:
            raise TbxError(f"container {info.name} did not become ready within {READY_TIMEOUT:.0f} s",
                           details=_logs_tail(info.name), fix=f"See: podman logs {info.name}")
        if delay > 0.1:
            cur = inspect(info.name)
            if cur is None or not cur.running:
                raise TbxError(f"container {info.name} stopped while initialising",
                               details=_logs_tail(info.name), fix=f"See: podman logs {info.name}")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def exec_argv(info: "Info | str", command: list[str], **kw) -> list[str]:
    return _exec_argv(info if isinstance(info, str) else info.name, command, **kw)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
