"""tbx containers: what a container is made of (spec), finding one by name or arch, starting it
and waiting for its init, and the ``podman exec`` line that runs something in it as the user.

Everything goes through the podman CLI (``runner``): no API service, no podman-py import.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import arch as archmod
from . import binfmt, execspec, hostinfo, hostspec, naming, runner
from .arch import Arch
from .errors import EXIT_ENGINE, TbxError

READY_TIMEOUT = float(os.environ.get("TBX_READY_TIMEOUT", "90"))
USERNS_MODES = ("keep-id", "identity", "auto")


LABEL_BINFMT = "io.github.tbx.binfmt"  # the registration line tbx writes at every start


def status_dir(name: str, *, root_uid: int | None = None) -> Path:
    """Host directory mounted at /run/tbx: the init writes `ready` or `failed` there (see ``status``)."""
    return _prepare_status(name, root_uid)[0]


def _prepare_status(name: str, root_uid: int | None) -> tuple[Path, bool]:
    """``status.prepare`` with its refusal as a TbxError: (path, whether it was made just now)."""
    from . import status

    try:
        path, made = status.prepare(name, root_uid=root_uid)
    except status.StatusError as e:
        raise TbxError(str(e), fix="Remove it, or log in as its owner (su -l) and run tbx from there") from None
    return Path(path), made


def default_userns() -> str:
    """Root: ``auto`` (the container's root is a subordinate id, so nothing of the host is writable by
    host uid 0 from inside); anyone else: ``keep-id``."""
    return "auto" if os.getuid() == 0 else "keep-id"


IDENTITY_WARNING = ("--userns identity: the container's root is the host's root on your shared home and on host "
                    "IPC objects; the image is trusted as root")


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


# Host paths a --volume may not share (whole trees the container must not reach), and container
# paths it may not cover (what tbx itself mounts there).
_NO_HOST = ("/proc", "/sys", "/dev", hostspec.HOST_PREFIX)
_NO_TARGET = ("/proc", "/sys", "/dev", hostspec.HOST_PREFIX, hostspec.STATUS_DIR)


def parse_volume(spec: str) -> dict:
    """``HOST[:CONTAINER][:ro|rw]`` (podman's syntax) as {"host", "container", "mode"}, or a
    TbxError naming what would break isolation: the host's /, /proc, /sys, /dev, /run/host, or
    tbx's status directories; a container path over /proc, /sys, /dev, /run/host or /run/tbx."""
    parts = spec.split(":")
    mode = "rw"
    if len(parts) > 1 and parts[-1] in ("ro", "rw"):
        mode = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise TbxError(f"--volume {spec!r} is not HOST[:CONTAINER][:ro|rw]",
                       fix="Write it as podman does, e.g. --volume /srv/data:/data:ro")
    host, target = parts[0], parts[1] if len(parts) == 2 and parts[1] else parts[0]
    for p, what in ((host, "host"), (target, "container")):
        if not os.path.isabs(p):
            raise TbxError(f"--volume {spec!r}: the {what} path {p!r} is not absolute", fix="Give absolute paths")
    if not os.path.exists(host):
        raise TbxError(f"--volume {spec!r}: {host} does not exist on the host", fix=f"mkdir -p {host}, or fix the path")
    real = os.path.realpath(host)
    from . import paths

    try:
        status_root = os.path.join(paths.runtime_dir(), "tbx")
    except paths.RuntimeDirError:
        status_root = None
    bad = ("the whole host" if real == "/" else
           next((f"{d} (the host's kernel and devices, or tbx's own)" for d in _NO_HOST
                 if real == d or real.startswith(d + "/")), None) or
           (f"{status_root} (tbx's status directories)" if status_root and
            (real == status_root or real.startswith(status_root + "/") or status_root.startswith(real + "/")) else None))
    if bad:
        raise TbxError(f"--volume {spec!r} would share {bad} with the container; refused",
                       fix="Share a directory of your data instead")
    t = os.path.normpath(target)
    if t == "/" or any(t == d or t.startswith(d + "/") for d in _NO_TARGET):
        raise TbxError(f"--volume {spec!r}: {t} inside the container is the container's own or tbx's; refused",
                       fix="Mount it somewhere else inside, e.g. /data")
    return {"host": real, "container": t, "mode": mode}


def _volume(source: str, target: str, options: str) -> list[str]:
    for p in (source, target):
        if ":" in p or "," in p:
            raise TbxError(f"cannot share {p!r} with a container: podman's -v syntax does not allow ':' or ',' in it")
    return ["--volume", f"{source}:{target}:{options}"]


def spec(*, name: str, image: str, a: Arch, host_arch: Arch, emulator: str | None,
         user: execspec.User, userns: str, source: str, create_id: str, runtime: hostspec.HostRuntime,
         cpu: str | None = None, host_entry: str | None = None, volumes: list[dict] = (), accel=None) -> list[str]:
    """``podman create`` arguments for a tbx container. ``image`` is the local (arch-suffixed)
    name, ``source`` the remote reference it came from, ``emulator`` the host path of the
    emulator (resolved), ``userns`` a layout checked by ``validate_userns``, ``cpu`` a QEMU CPU
    model checked by ``cpumodels.check_cpu``: QEMU_CPU in the container's environment, which the
    init and every ``podman exec`` start from. ``accel``: an ``accel.Plan`` (its read-only binds
    and label).

    No CAP_SYS_ADMIN: nothing inside can mount or remount (tbx registers the emulator from the
    host, see ``registration``). /run/host holds only the host directories the init needs,
    each a read-only, non-recursive, private bind.
    """
    emulated = archmod.needs_emulation(a, host_arch)
    init_args = ["--arch", a.name, "--user", user.name, "--uid", str(user.uid), "--gid", str(user.gid),
                 "--group", user.group, "--home", user.home, "--shell", user.shell, "--status", hostspec.STATUS_DIR]
    labels = {naming.LABEL_MANAGED: "true", naming.LABEL_ARCH: a.name, naming.LABEL_OCI_ARCH: a.oci_arch,
              naming.LABEL_SOURCE: source, naming.LABEL_IMAGE: image, naming.LABEL_CREATE_ID: create_id}
    # An emulator in the user's home (tbx emulator pull) is seen at its own path through the
    # shared home; a read-only bind of the home's top directory under /run/host is refused to a
    # rootless user (EINVAL), and would expose every home on the host besides.
    home_shared = os.path.isdir(user.home) and userns != "auto"
    in_home = bool(emulator) and home_shared and emulator.startswith(user.home.rstrip("/") + "/")
    if emulated and host_entry:  # host mode: the host's entry runs it; nothing is registered
        init_args += ["--binfmt-host", host_entry]
        labels[naming.LABEL_BINFMT_MODE] = "host"
        labels[naming.LABEL_HOST_ENTRY] = host_entry
    elif emulated:
        assert emulator
        labels[naming.LABEL_BINFMT_MODE] = "private"
        line = binfmt.registration_line(a, emulator if in_home else runtime.in_container(emulator))
        init_args += ["--binfmt-name", a.binfmt_name]
        labels[LABEL_BINFMT] = line
        from .emulators import owner_of

        labels[naming.LABEL_EMULATOR] = owner_of(emulator) or emulator
        labels[naming.LABEL_EMULATOR_PATH] = emulator
    # label=disable as toolbox and distrobox do: under enforcing SELinux the shared home is
    # otherwise denied.
    argv = ["podman", "create", "--pull", "never", "--name", name, "--network", "host", "--stop-timeout", "5",
            "--security-opt", "label=disable",
            "--user", "root:root", "--entrypoint", json.dumps(runtime.entrypoint())]
    env = {"container": "podman", "TBX_CONTAINER": name, "TBX_ARCH": a.name}
    if cpu:
        labels[naming.LABEL_CPU] = cpu
        env["QEMU_CPU"] = cpu
    if volumes:
        labels[naming.LABEL_VOLUMES] = json.dumps(list(volumes), separators=(",", ":"))
    if accel is not None:
        from .accel import LABEL as ACCEL_LABEL

        labels[ACCEL_LABEL] = accel.label
        env.update(accel.env)
    for k, v in labels.items():
        argv += ["--label", f"{k}={v}"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    binds = runtime.binds()
    for d in binds:
        argv += _volume(d, runtime.in_container(d), "ro,private,bind")
    if emulator and not in_home and not hostspec.covered(emulator, binds):
        # the emulator alone (never a directory above it: that would bring /var or /tmp along)
        argv += _volume(emulator, runtime.in_container(emulator), "ro,private,bind")
    argv += _volume(str(status_dir(name)), hostspec.STATUS_DIR, "rw,private")
    # --userns auto maps the user to an unrelated range: a shared home would be unusable there.
    if home_shared:
        argv += _volume(user.home, user.home, "rslave")
    if user.uid != 0:  # the user's own runtime directory (root's would be the host's /run)
        xdg = str(hostinfo.runtime_dir())
        if not user.home.startswith(xdg):
            argv += _volume(xdg, xdg, "rw")
    for v in volumes:  # tbx create --volume (checked by parse_volume)
        argv += _volume(v["host"], v["container"], f"{v['mode']},rslave")
    for src, dst in (accel.binds if accel is not None else ()):  # native tools (accel): read-only, alone
        argv += _volume(src, dst, "ro,private,bind")
    if os.path.exists("/run/dbus/system_bus_socket"):
        argv += _volume("/run/dbus/system_bus_socket", "/run/dbus/system_bus_socket", "rw")
    devices = [d for d in ("/dev/fuse", "/dev/kvm", "/dev/net/tun") if os.path.exists(d) and os.access(d, os.R_OK | os.W_OK)]
    if os.path.isdir("/dev/dri"):
        devices += [str(p) for p in sorted(Path("/dev/dri").iterdir()) if os.access(p, os.R_OK | os.W_OK)]
    for d in devices:
        argv += ["--device", d]
    if os.path.isdir("/dev/mqueue") and userns != "identity":
        # podman's host IPC needs the host's mqueue mount; never where the container's root is host root
        argv += ["--ipc", "host"]
    if userns == "keep-id":
        argv += ["--userns", "keep-id"]
    elif userns == "identity":
        argv += ["--uidmap", "0:0:65536", "--gidmap", "0:0:65536"]
    else:
        # sysfs cannot be mounted afresh in a user namespace that does not own the (host's)
        # network namespace: bind the host's instead.
        # (size: the whole 16-bit range, nobody and nogroup included, whatever ids the image's files use)
        argv += ["--userns", "auto:size=65536", *_volume("/sys", "/sys", "ro,rslave")]
    return argv + [image, *runtime.command(init_args)]


def new_create_id() -> str:
    return os.urandom(16).hex()


def busy_but_gone(r, name: str) -> bool:
    """podman 4.3 often fails removing a --userns auto container with "device or resource busy"
    on its shm mount after it has already dropped the container's record. Then the container is
    gone: its leftover storage is removed (retried while busy), and True. Anything else: False."""
    import re

    m = re.search(r"removing container ([0-9a-f]{64})", r.stderr)
    if r.returncode == 0 or "busy" not in r.stderr.lower() or not m:
        return False
    if runner.run(["podman", "container", "exists", name], timeout=60).returncode == 0:
        return False  # still there: the caller reports it
    for attempt in range(6):
        rr = runner.run(["podman", "rm", "--storage", "--force", m.group(1)], timeout=120)
        if rr.returncode == 0 or "busy" not in rr.stderr.lower():
            break
        time.sleep(0.3 * (attempt + 1))
    return True


def podman_rm(name: str, *, force: bool, stop_time: int = 2):
    """tbx's one ``podman rm`` of a container, with its one retry rule: podman's occasional
    "device or resource busy" is retried (five tries in all, backing off), and a container that
    is already gone counts as removed. (removed, podman's last result)."""
    for attempt in range(5):
        r = runner.run(["podman", "rm", *(["--force", "--time", str(stop_time)] if force else []), name],
                       timeout=120)
        if r.returncode == 0 or "no such container" in r.stderr.lower() or busy_but_gone(r, name):
            return True, r
        if "busy" not in r.stderr.lower() or attempt == 4:
            return False, r
        time.sleep(0.3 * (attempt + 1))
    raise AssertionError("unreachable")


def remove_by_create_id(create_id: str) -> None:
    """Undo a half-made create: remove only the container that create made (by its create id),
    whatever its name. A failure to do so is reported, not swallowed."""
    r = runner.run(["podman", "ps", "-a", "-q", "--filter", f"label={naming.LABEL_CREATE_ID}={create_id}"], timeout=60)
    ids = r.stdout.split() if r.returncode == 0 else []
    for cid in ids:
        removed, rr = podman_rm(cid, force=True, stop_time=0)
        if not removed:
            from .output import warn

            warn(f"could not remove the half-made container {cid[:12]}: {rr.stderr.strip()[-300:]}\n"
                 f"Remove it with: podman rm -f {cid[:12]}")
    if r.returncode != 0:
        from .output import warn

        warn(f"could not look for a half-made container to remove: {r.stderr.strip()[-300:]}\n"
             f"Check with: podman ps -a --filter label={naming.LABEL_CREATE_ID}={create_id}")


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
    pid: int = 0
    started_at: float = 0.0
    exec_ids: tuple = ()
    root_uid: int | None = None   # host uid of the container's root, when it is not tbx's user


def _timestamp(text: str) -> float:
    """podman's StartedAt (RFC 3339 with nanoseconds) as a Unix time; 0 when unknown."""
    import re
    from datetime import datetime

    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text or "")
    if not m:
        return 0.0
    tz = "+00:00" if m.group(3) in (None, "Z") else m.group(3)
    return datetime.fromisoformat(m.group(1) + tz).timestamp() + float("0" + (m.group(2) or ".0")[:10])


def _root_uid(d: dict) -> int | None:
    if os.getuid() != 0:
        return None
    for row in ((d.get("HostConfig") or {}).get("IDMappings") or {}).get("UidMap") or []:
        inside, outside, _ = str(row).split(":")
        if inside == "0":
            return int(outside)
    return None


def _info_from_inspect(d: dict) -> Info:
    labels = (d.get("Config") or {}).get("Labels") or {}
    state = d.get("State") or {}
    return Info(name=d.get("Name", "").lstrip("/"), id=d["Id"], arch=labels.get(naming.LABEL_ARCH, "?"),
                oci_arch=labels.get(naming.LABEL_OCI_ARCH, "?"), image=d.get("ImageName") or d.get("Image", ""),
                running=bool(state.get("Running")), status=state.get("Status", "?"),
                created=str(d.get("Created", "")), managed=labels.get(naming.LABEL_MANAGED) == "true",
                labels=labels, pid=int(state.get("Pid") or 0), started_at=_timestamp(state.get("StartedAt", "")),
                exec_ids=tuple(d.get("ExecIDs") or ()), root_uid=_root_uid(d))


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
    if name is not None:
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
    every = list_managed()
    from . import status

    status.write_catalog(naming.arch_by_container(every))
    rows = [r for r in every if (r.get("Labels") or {}).get(naming.LABEL_ARCH) == a.name]
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


def _start(name: str) -> None:
    r = runner.run(["podman", "start", name], timeout=120)
    if r.returncode != 0:
        raise TbxError(f"container {name} could not be started", details=r.stderr.strip()[-800:],
                       exit_code=EXIT_ENGINE)


def _restart(info: Info, why: str) -> None:
    """A running container whose init can no longer signal readiness: restart it when nothing runs
    in it, else say so (a restart would end those commands)."""
    if info.exec_ids:
        n = len(info.exec_ids)
        raise TbxError(f"container {info.name} is running, but {why}: it must be restarted",
                       fix=f"podman restart {info.name}  (this ends the {n} command{'s' if n > 1 else ''} running in it)")
    from .output import note

    note(f"container {info.name}: {why}; restarting it")
    r = runner.run(["podman", "stop", "-t", "5", info.name], timeout=60)
    if r.returncode != 0:
        raise TbxError(f"container {info.name} could not be stopped", details=r.stderr.strip()[-800:],
                       exit_code=EXIT_ENGINE)
    _start(info.name)


def _missing_emulator(info: Info) -> TbxError | None:
    """The error for a container whose emulator (the interpreter of its registration line) cannot
    be registered now: no longer on the host (naming the pulled emulator it was), reached through a
    link now, writable by someone else, or no longer QEMU for the container's arch; None when it is
    as it was at create."""
    from . import emulators, registration

    line = info.labels.get(LABEL_BINFMT)
    if not line:
        return None
    interp = registration.interpreter(line)
    on_host = interp[len(hostspec.HOST_PREFIX):] if interp.startswith(hostspec.HOST_PREFIX + "/") else interp
    recreate = (f"recreate the container: tbx rm {info.name} && tbx create {info.name} --arch {info.arch} …")
    if not os.path.isfile(on_host):
        which = info.labels.get(naming.LABEL_EMULATOR, on_host)
        pulled = f" (the pulled emulator {which}, removed)" if which != on_host else ""
        return TbxError(f"container {info.name} cannot start: its emulator {on_host} is missing on the host{pulled}",
                        fix=f"Put it back (tbx check shows how; a pulled one: tbx emulator pull), then run the command "
                            f"again; or {recreate}")
    if os.path.realpath(on_host) != on_host:
        why = f"{on_host} is now a link to {os.path.realpath(on_host)}"
    else:
        from . import paths

        why = paths.untrusted(on_host)
        a = archmod.lookup(info.arch or "")
        if why is None and a is not None:
            why = emulators.not_qemu_remembered(on_host, a)
    if why:
        return TbxError(f"container {info.name} cannot start: its emulator {on_host} changed since the container "
                        f"was created: {why}", fix=f"Put the emulator back as it was, or {recreate}")
    return None


def _register(info: Info, line: str) -> None:
    """Register the emulator in the container's own binfmt_misc (see ``registration``); on failure
    stop the container (its init would wait for ever) and say why."""
    from . import registration

    try:
        gone = _missing_emulator(info)
        if gone is not None:
            raise gone
        registration.register(info.pid, line)
    except TbxError:
        runner.run(["podman", "stop", "-t", "2", info.name], timeout=60)
        raise


def _failure(name: str, started_at: float) -> str | None:
    """The reason the init wrote in `failed` during this start (an older file is not this run's)."""
    from . import status

    got = status.read_small(name, "failed")
    if got is None or (started_at and got[1] < started_at - 1):
        return None
    return got[0] or None


def ensure_running(info: Info) -> None:
    """Start the container when needed, register its emulator, and wait until its init holds
    the ready lock (or has failed). Never deletes anything the init owns."""
    from . import status

    if info.running and status.is_ready(info.name, unlocked_ok=True):
        return
    sdir, made_now = _prepare_status(info.name, info.root_uid)
    # One tbx at a time starts and registers (others wait here, then find it running and
    # registered): eight `tbx run` on a stopped container start it once.
    with _start_lock(sdir):
        cur = inspect(info.name)
        if cur is None:
            raise TbxError(f"container {info.name} disappeared while starting")
        if cur.running and status.is_ready(info.name, unlocked_ok=True):
            return
        entry = cur.labels.get(naming.LABEL_HOST_ENTRY)
        if not cur.running and entry:
            e = next((x for x in binfmt.read_entries() if x.name == entry), None)
            if e is None or not e.enabled:
                raise TbxError(f"container {info.name} runs through the host's binfmt_misc entry {entry}, "
                               f"which is {'gone' if e is None else 'disabled'}",
                               fix=f"Enable it again (e.g. sudo update-binfmts --enable {entry}), or recreate the "
                                   "container in private mode on Linux >= 6.7")
        if not cur.running:
            gone = _missing_emulator(cur)  # before a start that would only be stopped again
            if gone is not None:
                raise gone
            _start(info.name)
        elif made_now:
            _restart(cur, "its status directory was missing")
        cur = inspect(info.name)
        if cur is None:
            raise TbxError(f"container {info.name} disappeared while starting")
        line = cur.labels.get(LABEL_BINFMT)
        if line and cur.running:
            _register(cur, line)
    deadline = time.monotonic() + READY_TIMEOUT
    logs_checked = False
    delay = 0.005
    while not status.is_ready(info.name, unlocked_ok=True):
        if time.monotonic() > deadline:
            raise TbxError(f"container {info.name} did not become ready within {READY_TIMEOUT:.0f} s",
                           details=_logs_tail(info.name), fix=f"See: podman logs {info.name}")
        if delay > 0.1:
            now = inspect(info.name)
            if now is None or not now.running:
                why = _failure(info.name, cur.started_at)
                raise TbxError(f"container {info.name} failed to initialise" + (f": {why}" if why else ""),
                               details=_logs_tail(info.name), fix=f"See: podman logs {info.name}")
            if not logs_checked and time.monotonic() > deadline - READY_TIMEOUT + 2:
                logs_checked = True
                said = [ln for ln in _logs_tail(info.name, 40).splitlines() if ln.startswith("tbx-init:")]
                if said and said[-1].strip() == "tbx-init: ready":
                    # The init says ready, but its ready file is gone: only a restart brings it back.
                    _restart(now, "its status file 'ready' was removed")
                    cur = inspect(info.name) or cur
                    if line:
                        _register(cur, line)
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


class _start_lock:
    """An exclusive flock on the status directory (a host directory only tbx and the container's
    root can open), held while one tbx starts the container and registers its emulator."""

    def __init__(self, sdir: Path) -> None:
        self.sdir = sdir

    def __enter__(self):
        from .status import lock_exclusive

        self.fd = os.open(self.sdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            lock_exclusive(self.fd, f"the start of {self.sdir.name}", READY_TIMEOUT,
                           fix=f"See: podman logs {self.sdir.name}", max_delay=0.02)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # releases the lock


def exec_argv(info: "Info | str", command: list[str], **kw) -> list[str]:
    return execspec.exec_argv(info if isinstance(info, str) else info.name, command, **kw)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
