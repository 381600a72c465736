"""Commands on a native machine (a podman connection, see nodes.py): a tbx-labelled container per
arch on the node, the current directory shipped into it, and the command streamed back.

The steady state is one round trip: ``podman --connection NAME exec -i`` of a small shell script
that makes the working directory, unpacks the tar of the current directory arriving on its
stdin, and execs the command. Only when podman answers that the container is missing (or
stopped) does tbx create (or start) it and try again. The working directory on the node has the
same path as here; nothing else is shared (no home directory, no /run/host).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
import threading

from . import arch as archmod
from . import naming, runner
from .errors import TbxError
from .nodes import LABEL_REMOTE, Node, classify, connection_failed, raise_if_unreachable

MAX_FILES = 20000
MAX_BYTES = 256 * 1024 * 1024
KEEPALIVE = 'trap "exit 0" TERM INT; while :; do sleep 1000 & wait $!; done'
# $0: the working directory; with a tar on stdin (sync): unpacked there first. The marker on
# stderr says the script runs: what podman printed before it is podman's own (a missing or
# stopped container, an unreachable node), everything after it is the command's, streamed.
MARKER = "\x1etbx-run-started"
_SCRIPT = 'printf "\\036tbx-run-started\\n" >&2; mkdir -p -- "$0" && cd -- "$0" && {unpack}exec "$@"'
SCRIPT_SYNC = _SCRIPT.format(unpack="tar -xf - && ")
SCRIPT_NOSYNC = _SCRIPT.format(unpack="")
RUN_ID = "TBX_RUN_ID"
# every process whose environment holds the run's id: TERM, then (after 3 s) KILL
STOP_SCRIPT = ('''found() { for p in /proc/[0-9]*; do tr '\\0' '\\n' <"$p/environ" 2>/dev/null | '''
               '''grep -qx "$0" && echo "${p#/proc/}"; done; }; '''
               '''pids=$(found); [ -n "$pids" ] && kill -TERM $pids 2>/dev/null; i=0; '''
               '''while [ -n "$(found)" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; '''
               '''pids=$(found); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null; true''')


def files_to_sync(top: str) -> list[str]:
    """Every path under ``top`` (relative), refused when there are too many or they are too big."""
    out: list[str] = []
    size = 0
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for n in sorted(dirs) + sorted(files):
            p = os.path.join(root, n)
            out.append(os.path.relpath(p, top))
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                size += st.st_size
            if len(out) > MAX_FILES or size > MAX_BYTES:
                raise TbxError(f"the current directory {top} holds more than {MAX_FILES} files or "
                               f"{MAX_BYTES >> 20} MiB; shipping it to the node on every run would be slow",
                               fix="cd into your project's directory, or pass --no-sync")
    return out


def write_tar(top: str, paths: list[str], stream) -> None:
    """The files as a tar on ``stream``, owned by root (the node's user in its container)."""
    def owned_by_root(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    try:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for rel in paths:
                try:
                    tar.add(os.path.join(top, rel), arcname=rel, recursive=False, filter=owned_by_root)
                except (PermissionError, FileNotFoundError):
                    continue  # unreadable, or gone since the walk
    except (BrokenPipeError, OSError, ValueError):
        pass  # the remote side stopped reading: its exit says why
    finally:
        try:
            stream.close()
        except OSError:
            pass


def create(node: Node, name: str, a: archmod.Arch, ref: str, tls_verify: bool | None) -> None:
    """The node's container for ``a`` (pulled there from ``ref``), started."""
    from .skopeo import tls_args  # (not on the hot path: only when the node has no container yet)

    labels = {naming.LABEL_MANAGED: "true", naming.LABEL_ARCH: a.name, naming.LABEL_OCI_ARCH: a.oci_arch,
              naming.LABEL_SOURCE: ref, LABEL_REMOTE: "true"}
    argv = [*node.podman, "create", "--name", name, "--platform", a.platform, "--network", "host",
            *tls_args(tls_verify)]
    for k, v in labels.items():
        argv += ["--label", f"{k}={v}"]
    r = runner.run([*argv, ref, "/bin/sh", "-c", KEEPALIVE], timeout=1800)
    if r.returncode != 0 and "already in use" not in r.stderr:  # another tbx made it meanwhile: fine
        raise_if_unreachable(r, node)
        raise TbxError(f"creating {name} on {node.name} from {ref} failed",
                       details=r.stderr.strip()[-600:], fix=f"Check the image on the node: {' '.join(node.podman)} "
                                                            f"pull --platform {a.platform} {ref}")
    start(node, name)


def start(node: Node, name: str) -> None:
    r = runner.run([*node.podman, "start", name], timeout=300)
    if r.returncode != 0:
        raise TbxError(f"starting {name} on {node.name} failed", details=r.stderr.strip()[-600:])


def stop(node: Node, name: str, run_id: str) -> None:
    """Stop the command of run ``run_id`` (and what it started) in the node's container."""
    runner.run([*node.podman, "exec", name, "/bin/sh", "-c", STOP_SCRIPT, f"{RUN_ID}={run_id}"], timeout=60)


class Outcome:
    __slots__ = ("exit_code", "stdout", "stderr", "error", "fix", "unreachable")

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.error: str | None = None
        self.fix: str | None = None
        self.unreachable = False    # the node did not answer (not the command failing)


def run(node: Node, name: str, a: archmod.Arch, ref: str | None, command: list[str], *,
        sync_paths: list[str] | None, tls_verify: bool | None, on_line, started=None, cwd: str | None = None) -> Outcome:
    """Run ``command`` in the node's container ``name`` (made from ``ref`` when missing), with
    ``sync_paths`` of the current directory (files_to_sync) shipped first; None: nothing
    shipped. ``on_line(text, err)`` gets each output line; ``started(proc, stop)`` each podman
    client started, with the function that stops the command on the node (podman's exec client
    forwards no signal): Ctrl-C stops it there too."""
    cwd = cwd or os.getcwd()
    sync = sync_paths is not None
    out = Outcome()
    run_id = os.urandom(6).hex()  # in the command's environment: how stop() finds its processes
    argv = [*node.podman, "exec", *(["-i"] if sync else []), "--env", f"{RUN_ID}={run_id}", name, "/bin/sh", "-c",
            SCRIPT_SYNC if sync else SCRIPT_NOSYNC, cwd, *command]
    for _ in range(3):
        proc = runner.popen(argv, stdin=subprocess.PIPE if sync else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
        if started:
            started(proc, lambda: stop(node, name, run_id))
        feeder = None
        if sync:
            feeder = threading.Thread(target=write_tar, args=(cwd, sync_paths, proc.stdin), daemon=True)
            feeder.start()
        held: list[str] = []   # podman's own lines, before the marker: shown only when not handled
        begun = threading.Event()

        def pump_err():
            for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                if not begun.is_set():
                    if line == MARKER:
                        begun.set()
                    else:
                        held.append(line)
                    continue
                out.stderr.append(line)
                on_line(line, True)

        t = threading.Thread(target=pump_err, daemon=True)
        t.start()
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            out.stdout.append(line)
            on_line(line, False)
        t.join()
        rc = proc.wait()
        if feeder:
            feeder.join(5)
        text = "\n".join(held)
        if begun.is_set():  # the command ran: its exit code, whatever it is
            out.exit_code = rc
            return out
        if rc == 125 and connection_failed(rc, text):
            out.error, out.fix = classify(text, node)
            out.unreachable = True
            return out
        if rc == 125 and "no such container" in text:
            if ref is None:
                out.error = f"there is no container {name} on {node.name}"
                return out
            try:
                create(node, name, a, ref, tls_verify)
            except TbxError as e:
                out.error, out.fix = e.message, e.fix
                return out
            continue
        if rc == 125 and ("state improper" in text or "not running" in text):
            start(node, name)
            continue
        for line in held:
            out.stderr.append(line)
            on_line(line, True)
        out.exit_code = rc
        return out
    out.error = f"{name} on {node.name} did not come up"
    return out


def list_containers(node: Node) -> list[dict]:
    """The tbx containers on the node: name, arch, source, status."""
    r = runner.run([*node.podman, "ps", "--all", "--filter", f"label={naming.LABEL_MANAGED}=true",
                    "--format", "json"], timeout=120)
    if r.returncode != 0:
        raise_if_unreachable(r, node, exit_code=125)
        raise TbxError(f"listing containers on {node.name} failed", details=r.stderr.strip()[-400:])
    rows = []
    for c in json.loads(r.stdout or "[]"):
        labels = c.get("Labels") or {}
        rows.append({"name": (c.get("Names") or [""])[0], "id": c.get("Id", "")[:12],
                     "arch": labels.get(naming.LABEL_ARCH, "?"), "source": labels.get(naming.LABEL_SOURCE, ""),
                     "status": c.get("State", ""), "connection": node.name,
                     "created_by": "tbx run" if labels.get(LABEL_REMOTE) == "true" else "tbx"})
    return rows
