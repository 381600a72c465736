"""Commands on a native machine (a podman connection, see nodes.py): a tbx-labelled container per
arch on the node, the current directory shipped into it, the command streamed back, and what
the command made or changed there copied back here.

The steady state is one round trip: ``podman --connection NAME exec -i`` of a small shell script
that makes the working directory, unpacks the tar of the current directory arriving on its
stdin, stamps the time, runs the command, and then writes on stdout, after a marker carrying
the run's random id: the shipped paths the command deleted, and a tar of every file (not
directory) newer than the stamp. Its exit code follows on stderr, after another marker: a run
whose end marker never came lost its node (no retry: the command may have had effects). Only
when podman answers that the container is missing (or stopped) does tbx create (or start) it
and try again. The working directory on the node has the same path as here; nothing else is
shared (no home directory, no /run/host).

Results here (``Results.apply``): a file the command made or changed is written into the
current directory, unless the local file changed since it was shipped (a conflict): then the
local file stays and the node's version is written beside it as ``FILE.from-NODE``. Deletions
are reported, and applied only when asked (``--sync-deletions``), and only to files unchanged
here. Paths that leave the directory (absolute, ``..``, through a symbolic link) are refused.
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
PROGRESS_BYTES = 16 * 1024 * 1024   # shipping more than this shows progress
KEEPALIVE = 'trap "exit 0" TERM INT; while :; do sleep 1000 & wait $!; done'
# $0: the working directory. The first marker on stderr says the script runs: what podman
# printed before it is podman's own (a missing or stopped container, an unreachable node),
# everything after it is the command's, streamed.
MARKER = "\x1etbx-run-started"
DONE = "\x1etbx-run-done "
RUN_ID = "TBX_RUN_ID"
_SHIPPED = '"/tmp/.tbx-shipped-$TBX_RUN_ID"'
_STAMP = '"/tmp/.tbx-stamp-$TBX_RUN_ID"'
# with a tar on stdin: unpacked (its members listed), then the stamp, a second in the past: file
# times come from a coarse clock, and a file the command writes at once may get the stamp's own
SHIP = (f'tar -xvf - > {_SHIPPED} && : > {_STAMP} && '
        f'{{ touch -d "@$(($(date +%s) - 1))" {_STAMP} 2>/dev/null || sleep 1; }} && ')
# after the command: the results marker, the deleted shipped paths, an end line, then the tar
RESULTS = ('printf "\\n\\036tbx-results-%s\\n" "$TBX_RUN_ID"; '
           f'while IFS= read -r p; do [ -e "$p" ] || [ -L "$p" ] || printf "%s\\n" "$p"; done < {_SHIPPED}; '
           'printf "\\036tbx-results-end\\n"; '
           f'find . ! -type d -newer {_STAMP} -exec tar -cf - {{}} + 2>/dev/null; rm -f {_SHIPPED} {_STAMP}; ')
_STARTED = 'printf "\\036tbx-run-started\\n" >&2; rc=125; '
_INTO = 'mkdir -p -- "$0" && cd -- "$0"'
_UNPACK_FAILED = 'echo "tbx: the shipped directory could not be unpacked in $0" >&2'
_END = '; printf "\\n\\036tbx-run-done %d\\n" "$rc" >&2; exit "$rc"'
SCRIPT_SYNC = (_STARTED + f'if {_INTO} && {SHIP}true; then "$@"; rc=$?; {RESULTS}else {_UNPACK_FAILED}; fi' + _END)
SCRIPT_NOSYNC = _STARTED + f'if {_INTO}; then "$@"; rc=$?; fi' + _END
SCRIPT_SHIP_ONLY = _STARTED + f'if {_INTO} && {SHIP}true; then rc=0; else {_UNPACK_FAILED}; fi' + _END
SCRIPT_PREPARE = _STARTED + f'if {_INTO}; then rc=0; fi' + _END   # tbx enter --no-sync
SCRIPT_RESULTS_ONLY = f'cd -- "$0" || exit 125; {RESULTS}true'   # tbx enter: after the shell
# every process whose environment holds the run's id: TERM, then (after 3 s) KILL
STOP_SCRIPT = ('''found() { for p in /proc/[0-9]*; do tr '\\0' '\\n' <"$p/environ" 2>/dev/null | '''
               '''grep -qx "$0" && echo "${p#/proc/}"; done; }; '''
               '''pids=$(found); [ -n "$pids" ] && kill -TERM $pids 2>/dev/null; i=0; '''
               '''while [ -n "$(found)" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; '''
               '''pids=$(found); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null; true''')


class Shipment:
    """The current directory as shipped: its paths (relative, in walk order) and what each was
    then (mtime in ns, size), which tells a local change since (a conflict) from none."""

    def __init__(self, top: str) -> None:
        self.top = top
        self.paths: list[str] = []
        self.stats: dict[str, tuple[int, int]] = {}
        self.size = 0
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for n in sorted(dirs) + sorted(files):
                p = os.path.join(root, n)
                rel = os.path.relpath(p, top)
                self.paths.append(rel)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    self.size += st.st_size
                    self.stats[rel] = (st.st_mtime_ns, st.st_size)
                if len(self.paths) > MAX_FILES or self.size > MAX_BYTES:
                    raise TbxError(f"the current directory {top} holds more than {MAX_FILES} files or "
                                   f"{MAX_BYTES >> 20} MiB; shipping it to the node on every run would be slow",
                                   fix="cd into your project's directory, or pass --no-sync")

    def changed_here(self, rel: str) -> bool:
        """Did the local file change (or appear) since it was shipped?"""
        try:
            st = os.lstat(os.path.join(self.top, rel))
        except FileNotFoundError:
            return False
        return self.stats.get(rel) != (st.st_mtime_ns, st.st_size)


def files_to_sync(top: str) -> Shipment:
    """Every path under ``top``, refused when there are too many or they are too big."""
    return Shipment(top)


def write_tar(top: str, paths: list[str], stream, progress=None) -> None:
    """The files as a tar on ``stream``, owned by root (the node's user in its container).
    ``progress(bytes so far)`` after each file, when given."""
    done = 0

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
                if progress is not None:
                    done = tar.offset
                    progress(done)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the remote side stopped reading: its exit says why
    finally:
        try:
            stream.close()
        except OSError:
            pass


def pull(node: Node, a: archmod.Arch, ref: str, tls_verify: bool | None, on_line) -> None:
    """The node pulls ``ref`` for ``a``, saying so, with podman's own progress lines."""
    import time

    from .skopeo import tls_args

    on_line(f"tbx: {node.name} is pulling {ref} ({a.platform}); first use of this image there", True)
    t0 = time.monotonic()
    proc = runner.popen([*node.podman, "pull", "--platform", a.platform, *tls_args(tls_verify), ref],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tail: list[str] = []
    for raw in proc.stderr:
        line = raw.decode(errors="replace").rstrip("\n")
        tail = (tail + [line])[-10:]
        if line.startswith(("Copying", "Writing", "Getting", "Storing")):
            on_line(f"tbx: {node.name}: {line}", True)
    if proc.wait() != 0:
        text = "\n".join(tail)
        raise_if_unreachable(subprocess.CompletedProcess([], proc.returncode, "", text), node)
        raise TbxError(f"{node.name} could not pull {ref} for {a.name}", details=text[-600:],
                       fix=f"Check the image on the node: {' '.join(node.podman)} pull --platform {a.platform} {ref}",
                       exit_code=125)
    on_line(f"tbx: {node.name} pulled {ref} in {time.monotonic() - t0:.1f} s", True)


def create(node: Node, name: str, a: archmod.Arch, ref: str, tls_verify: bool | None, on_line=None) -> None:
    """The node's container for ``a`` (pulled there from ``ref``, with progress), started."""
    from .skopeo import tls_args  # (not on the hot path: only when the node has no container yet)

    if on_line is not None:
        exists = runner.run([*node.podman, "image", "exists", ref], timeout=120)
        raise_if_unreachable(exists, node)
        if exists.returncode != 0:
            pull(node, a, ref, tls_verify, on_line)

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
                                                            f"pull --platform {a.platform} {ref}", exit_code=125)
    start(node, name)


def start(node: Node, name: str) -> None:
    r = runner.run([*node.podman, "start", name], timeout=300)
    if r.returncode != 0:
        raise_if_unreachable(r, node)
        raise TbxError(f"starting {name} on {node.name} failed", details=r.stderr.strip()[-600:], exit_code=125)


def stop(node: Node, name: str, run_id: str) -> None:
    """Stop the command of run ``run_id`` (and what it started) in the node's container."""
    runner.run([*node.podman, "exec", name, "/bin/sh", "-c", STOP_SCRIPT, f"{RUN_ID}={run_id}"], timeout=60)


class Outcome:
    __slots__ = ("exit_code", "stdout", "stderr", "error", "fix", "unreachable", "engine", "results")

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.error: str | None = None
        self.fix: str | None = None
        self.unreachable = False    # the node did not answer (not the command failing)
        self.engine = False         # podman on the node failed (create, start): exit code 125
        self.results: Results | None = None


class Results:
    """What came back from a node into the current directory (see the module's docstring)."""

    def __init__(self, ship: Shipment, node: str, sync_deletions: bool) -> None:
        self.ship, self.node, self.sync_deletions = ship, node, sync_deletions
        self.copied: list[str] = []
        self.conflicts: list[str] = []     # kept here; the node's version beside it
        self.deleted_there: list[str] = []  # deleted by the command (applied here with sync_deletions)
        self.deleted_here: list[str] = []
        self.refused: list[str] = []

    def _inside(self, rel: str) -> str | None:
        """The local path of a member, or None when it would leave the directory."""
        rel = os.path.normpath(rel)
        if rel.startswith(("/", "..")) or rel == ".":
            return None
        top = os.path.realpath(self.ship.top)
        parent = os.path.dirname(os.path.join(top, rel))
        if os.path.realpath(parent) != parent:  # through a symbolic link
            return None
        return os.path.join(top, rel)

    def _write(self, tar, m, dest: str) -> None:
        import tempfile

        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if m.issym():
            if os.path.isabs(m.linkname) or os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname)) \
                    .startswith(".."):
                self.refused.append(m.name)
                return
            if os.path.lexists(dest) and not os.path.isdir(dest):
                os.unlink(dest)
            os.symlink(m.linkname, dest)
            return
        src = tar.extractfile(m)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".tbx-back-")
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := src.read(1 << 20):
                    f.write(chunk)
            os.chmod(tmp, m.mode & 0o777)
            os.utime(tmp, (m.mtime, m.mtime))
            os.replace(tmp, dest)
        except BaseException:
            os.unlink(tmp)
            raise

    def apply(self, stream, deleted: list[str]) -> None:
        for rel in deleted:
            rel = rel.rstrip("/")
            if rel.startswith("./"):
                rel = rel[2:]
            if rel not in self.ship.stats:
                continue  # a directory, or not one of ours
            self.deleted_there.append(rel)
            if self.sync_deletions and not self.ship.changed_here(rel) and (dest := self._inside(rel)):
                try:
                    os.unlink(dest)
                    self.deleted_here.append(rel)
                except OSError:
                    pass
        try:
            tar = tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True)
        except tarfile.ReadError:
            return  # nothing came back (no file changed)
        total = 0
        with tar:
            for m in tar:
                rel = m.name[2:] if m.name.startswith("./") else m.name
                dest = self._inside(rel)
                if dest is None or not (m.isfile() or m.issym()):
                    self.refused.append(m.name)
                    continue
                total += m.size
                if total > MAX_BYTES:
                    self.refused.append(m.name)
                    continue
                if self.ship.changed_here(rel) or (rel not in self.ship.stats and os.path.lexists(dest)
                                                   and not self._same(dest, m)):
                    self.conflicts.append(rel)
                    dest = f"{dest}.from-{self.node}"
                else:
                    self.copied.append(rel)
                self._write(tar, m, dest)

    @staticmethod
    def _same(dest: str, m) -> bool:
        try:
            st = os.lstat(dest)
        except OSError:
            return False
        return st.st_size == m.size and int(st.st_mtime) == int(m.mtime)

    def summary(self) -> list[str]:
        """Lines for the user (empty when nothing came back)."""
        def few(names: list[str]) -> str:
            return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

        out = []
        if self.copied:
            out.append(f"{len(self.copied)} file{'s' * (len(self.copied) != 1)} back from {self.node}: "
                       f"{few(self.copied)}")
        if self.conflicts:
            out.append(f"changed here while the command ran, kept: {few(self.conflicts)}; {self.node}'s "
                       f"version is beside each as FILE.from-{self.node}")
        kept = [d for d in self.deleted_there if d not in self.deleted_here]
        if self.deleted_here:
            out.append(f"deleted here as on {self.node}: {few(self.deleted_here)}")
        if kept:
            out.append(f"deleted on {self.node}, kept here: {few(kept)} (--sync-deletions deletes them here too)")
        if self.refused:
            out.append(f"not copied back (outside the directory, not a file, or over {MAX_BYTES >> 20} MiB): "
                       f"{few(self.refused)}")
        return out

    def as_dict(self) -> dict:
        return {"copied": self.copied, "conflicts": self.conflicts, "deleted_there": self.deleted_there,
                "deleted_here": self.deleted_here, "refused": self.refused}


class _Lines:
    """Splits a stream into lines for ``sink(line)``, holding back empty lines until the next one:
    the script puts a newline before each of its markers (the command's output may not end with
    one), which ``marker_seen`` drops."""

    def __init__(self, sink) -> None:
        self.sink, self.held = sink, 0

    def line(self, text: str) -> None:
        if not text:
            self.held += 1
            return
        self.flush()
        self.sink(text)

    def flush(self) -> None:
        while self.held:
            self.held -= 1
            self.sink("")

    def marker_seen(self) -> None:
        self.held = max(0, self.held - 1)
        self.flush()


def _shipping_progress(ship: Shipment, node: Node, on_line):
    """A progress callback for write_tar when the directory is large: a bar on a terminal, a line
    at the start otherwise; None when it is small."""
    if ship.size < PROGRESS_BYTES:
        return None
    import sys

    mib = ship.size / (1 << 20)
    if not sys.stderr.isatty():
        on_line(f"tbx: shipping {len(ship.paths)} paths ({mib:.0f} MiB) to {node.name}", True)
        return None
    shown = {"pct": -1}

    def progress(done: int) -> None:
        pct = min(100, done * 100 // max(1, ship.size))
        if pct != shown["pct"]:
            shown["pct"] = pct
            bar = "#" * (pct // 4)
            sys.stderr.write(f"\rtbx: shipping {mib:.0f} MiB to {node.name} [{bar:<25}] {pct:3d}%")
            if pct == 100:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return progress


def _exec(node: Node, name: str, script: str, cwd: str, command: list[str], run_id: str, stdin_pipe: bool):
    return [*node.podman, "exec", *(["-i"] if stdin_pipe else []), "--env", f"{RUN_ID}={run_id}", name,
            "/bin/sh", "-c", script, cwd, *command]


def run(node: Node, name: str, a: archmod.Arch, ref: str | None, command: list[str], *,
        ship: Shipment | None, tls_verify: bool | None, on_line, started=None, cwd: str | None = None,
        sync_deletions: bool = False, script: str | None = None, run_id: str | None = None,
        feed: bool = True) -> Outcome:
    """Run ``command`` in the node's container ``name`` (made from ``ref`` when missing), with
    ``ship`` (the current directory) shipped first and what the command changed there copied
    back; None: nothing either way. ``on_line(text, err)`` gets each output line;
    ``started(proc, stop)`` each podman client started, with the function that stops the command
    on the node (podman's exec client forwards no signal): Ctrl-C stops it there too. ``feed``
    False: ``ship`` is only what the results are compared with (tbx enter, after the shell)."""
    cwd = cwd or os.getcwd()
    sync = ship is not None and feed
    out = Outcome()
    run_id = run_id or os.urandom(6).hex()  # in the command's environment: how stop() finds its processes
    script = script or (SCRIPT_SYNC if sync else SCRIPT_NOSYNC)
    argv = _exec(node, name, script, cwd, command, run_id, sync)
    results_line = f"\x1etbx-results-{run_id}".encode()
    for _ in range(3):
        proc = runner.popen(argv, stdin=subprocess.PIPE if sync else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
        if started:
            started(proc, lambda: stop(node, name, run_id))
        feeder = None
        if sync:
            feeder = threading.Thread(target=write_tar, args=(cwd, ship.paths, proc.stdin,
                                                              _shipping_progress(ship, node, on_line)), daemon=True)
            feeder.start()
        held: list[str] = []   # podman's own lines, before the marker: shown only when not handled
        begun = threading.Event()
        done: dict = {}

        def to_err(line: str) -> None:
            out.stderr.append(line)
            on_line(line, True)

        def pump_err():
            lines = _Lines(to_err)
            for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                if not begun.is_set():
                    if line == MARKER:
                        begun.set()
                    else:
                        held.append(line)
                    continue
                if line.startswith(DONE) and line[len(DONE):].isdigit():
                    lines.marker_seen()
                    done["rc"] = int(line[len(DONE):])
                    continue
                lines.line(line)
            lines.flush()

        def to_out(line: str) -> None:
            out.stdout.append(line)
            on_line(line, False)

        t = threading.Thread(target=pump_err, daemon=True)
        t.start()
        lines = _Lines(to_out)
        for raw in proc.stdout:
            if raw.rstrip(b"\n") == results_line:
                lines.marker_seen()
                deleted = []
                for raw2 in proc.stdout:
                    if raw2 == b"\x1etbx-results-end\n":
                        break
                    deleted.append(raw2.decode(errors="replace").rstrip("\n"))
                out.results = Results(ship, node.name, sync_deletions)
                out.results.apply(proc.stdout, deleted)
                proc.stdout.read()
                break
            lines.line(raw.decode(errors="replace").rstrip("\n"))
        lines.flush()
        t.join()
        rc = proc.wait()
        if feeder:
            feeder.join(5)
        text = "\n".join(held)
        if begun.is_set():  # the command ran: its exit code, or the node was lost meanwhile
            if "rc" in done:
                out.exit_code = done["rc"]
            else:
                out.error = (f"{node.name}: the connection was lost while the command ran (podman exited {rc}); "
                             "it was not run again: it may have had effects there")
                out.fix = f"Check the node: tbx check --connection {a.name}={node.name}"
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
                create(node, name, a, ref, tls_verify, on_line)
            except TbxError as e:
                out.error, out.fix, out.engine = e.message, e.fix, e.exit_code == 125
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
    out.error, out.engine = f"{name} on {node.name} did not come up", True
    return out


def list_containers(node: Node) -> list[dict]:
    """The tbx containers on the node: name, arch, source, status."""
    r = runner.run([*node.podman, "ps", "--all", "--filter", f"label={naming.LABEL_MANAGED}=true",
                    "--format", "json"], timeout=120)
    if r.returncode != 0:
        raise_if_unreachable(r, node)
        raise TbxError(f"listing containers on {node.name} failed", details=r.stderr.strip()[-400:],
                       exit_code=125)
    rows = []
    for c in json.loads(r.stdout or "[]"):
        labels = c.get("Labels") or {}
        rows.append({"name": (c.get("Names") or [""])[0], "id": c.get("Id", "")[:12],
                     "arch": labels.get(naming.LABEL_ARCH, "?"), "source": labels.get(naming.LABEL_SOURCE, ""),
                     "status": c.get("State", ""), "connection": node.name,
                     "created_by": "tbx run" if labels.get(LABEL_REMOTE) == "true" else "tbx"})
    return rows
