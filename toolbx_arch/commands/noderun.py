"""Runs on a podman connection's machine (issue 15): which arches go to a node, the node's
container and image for an arch, and one arch's run there. Shared by `tbx run --arch A` (one
arch, output as it comes, its exit code passed through) and multirun (several, prefixed).

Light on purpose: a remote run is one ``podman --connection`` round trip, and this module is
what tbx imports before it (containers, dataclasses and the CLI framework only when needed).
"""

from __future__ import annotations

import os
import sys
import threading
import time

from .. import arch as archmod
from .. import nodes, output, remote
from ..errors import TbxError


class Result:
    """One arch's outcome, as `tbx run --arch A,B…` reports it (table and --json)."""

    __slots__ = ("arch", "container", "exit_code", "seconds", "stdout", "stderr", "error", "fix", "where",
                 "fallback", "skipped", "results", "engine", "_pidfile")
    FIELDS = ("arch", "container", "exit_code", "seconds", "stdout", "stderr", "error", "fix", "where", "fallback",
              "skipped", "results")

    def __init__(self, arch: str) -> None:
        self.arch = arch
        self.container: str | None = None
        self.exit_code: int | None = None
        self.seconds = 0.0
        self.stdout = self.stderr = ""
        self.error: str | None = None
        self.fix: str | None = None
        self.where = "local"             # "local", or the podman connection it ran on
        self.fallback: str | None = None  # --fallback-local: why its node was not used
        self.skipped: list[dict] = []     # nodes listed before the one used, which did not answer
        self.results: dict | None = None  # what came back from the node (remote.Results.as_dict)
        self.engine = False               # podman failed (exit code 125), not tbx refusing
        self._pidfile: str | None = None

    @property
    def where_cell(self) -> str:
        """WHERE in the tables: the node, and the nodes skipped before it."""
        skipped = ", ".join(s["connection"] for s in self.skipped)
        return self.where + (" (fallback)" if self.fallback else "") + \
            (f" ({skipped} did not answer)" if skipped and not self.fallback and self.where != "local" else "")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.FIELDS}
        d["ok"] = self.ok
        return d


def _remote_source(a: archmod.Arch, image: str | None, node: nodes.Node | None = None) -> tuple[str, str]:
    """(container name on the node, image reference): --image's; else the local container's
    source; else, with no local container of the arch, the node's own tbx container of that arch
    (found by its labels), so that later runs reuse what the first one made there."""
    if image:
        from ..config import load
        from ..hostinfo import os_release
        from ..resolve import target
        from ..shortnames import qualify

        t = target(image=image, distro=None, release=None, arch=a.name, cfg=load(), host_release=os_release,
                   qualify=qualify)
        return t.container, str(t.ref)
    from .. import containers, naming

    try:
        info = containers.find(None, a.name)
    except TbxError as e:
        there = [r for r in remote.list_containers(node)
                 if r["arch"] == a.name and r["source"] and r["created_by"] == "tbx run"] if node else []
        if len(there) == 1:
            return there[0]["name"], there[0]["source"]
        raise TbxError(f"no {a.name} container here to take the node's image from ({e.message})"
                       + (f", and {len(there)} of that arch on {node.name}" if there else ""),
                       fix=f"Pass --image REF, or create one: tbx create --arch {a.name} …") from e
    return info.name, info.labels.get(naming.LABEL_SOURCE) or info.image


def run_remote(a: archmod.Arch, res: Result, candidates: list[nodes.Node], command: list[str], printer,
               procs: dict, lock: threading.Lock, stopping: threading.Event, image: str | None,
               ship: remote.Shipment | None, tls_verify: bool | None, fallback: bool = False,
               sync_deletions: bool = False) -> None:
    """One arch's run on the first of ``candidates`` that answers (a node that does not answer
    before the command starts is skipped and said so; one lost while it runs fails the arch)."""
    start = time.monotonic()
    try:
        for i, node in enumerate(candidates):
            res.where = node.name
            try:
                name, ref = _remote_source(a, image, node)
            except nodes.Unreachable as e:  # as if the run had found it down (nothing ran there)
                got = remote.Outcome()
                got.error, got.fix, got.unreachable = e.message, e.fix, True
            else:
                res.container = name

                def started(proc, stop):
                    with lock:
                        procs[a.name] = (proc, stop)
                        late = stopping.is_set()
                    if late:  # Ctrl-C came while it started
                        stop()
                        proc.terminate()

                got = remote.run(node, name, a, ref, command, ship=ship, tls_verify=tls_verify,
                                 on_line=lambda line, err: printer.line(a.name, line, err), started=started,
                                 sync_deletions=sync_deletions)
            if got.unreachable and i + 1 < len(candidates) and not stopping.is_set():
                res.skipped.append({"connection": node.name, "error": got.error})
                printer.line(a.name, f"tbx: {got.error}; trying {candidates[i + 1].name}", True)
                continue
            break
        if got.unreachable and fallback:  # run here afterwards, from the main thread (it may create)
            res.where, res.fallback, res.container = "local", got.error, None
            return
        res.exit_code, res.error, res.fix, res.engine = got.exit_code, got.error, got.fix, got.engine
        if got.unreachable and res.skipped:  # none of the listed nodes answered: one reason per node
            res.skipped.append({"connection": res.where, "error": got.error})
            res.where = ",".join(s["connection"] for s in res.skipped)
            res.error = (f"none of the {len(res.skipped)} nodes for {a.name} answers: "
                         + "; ".join(s["error"] for s in res.skipped))
        res.stdout, res.stderr = "\n".join(got.stdout), "\n".join(got.stderr)
        res.results = got.results.as_dict() if got.results else None
        if got.results:
            for line in got.results.summary():
                printer.line(a.name, f"tbx: {line}", True)
        if stopping.is_set() and res.exit_code != 0:
            res.error = "interrupted"
    except TbxError as e:
        res.error, res.fix, res.exit_code, res.engine = e.message, e.fix, None, e.exit_code == 125
    finally:
        res.seconds = round(time.monotonic() - start, 3)


def plan_nodes(wanted: list[archmod.Arch], pairs: list[str], local: bool, fallback_local: bool,
               results: dict[str, "Result"]) -> dict[str, list[nodes.Node]]:
    """The arches that run on a node: {arch name: the nodes to try, in order}. Listed nodes that
    do not answer are skipped (the result says which); when none answers, the arch's result fails
    with one reason per node (or, with --fallback-local, is left to run here, saying so). A node
    of another arch is refused."""
    from ..config import load

    plan = nodes.mapping(wanted, pairs, local, load().connections)
    if not plan:
        return {}
    states = nodes.remembered_arches(plan)
    nodes.check_arches(plan, states)
    out = {}
    for a, (use, skipped) in nodes.pick(plan, states).items():
        r = results[a.name]
        r.skipped = [{"connection": s.node.name, "error": s.error} for s in skipped]
        if use:
            out[a.name] = use
        elif fallback_local:
            r.fallback = "; ".join(s.error for s in skipped)
        else:
            msg, fix, details = nodes.down_error(a, skipped)
            r.where, r.fix = ",".join(s.node.name for s in skipped), fix
            r.error = msg + (": " + "; ".join(details.splitlines()) if details else "")
    return out


class _Plain:
    """One arch's output as it comes, with no prefix (tbx run --arch A on a node)."""

    @staticmethod
    def line(_name: str, text: str, err: bool) -> None:
        stream = sys.stderr if err else sys.stdout
        stream.write(text + "\n")
        stream.flush()


def single_remote(command: list[str], *, arch: str, image: str | None, connections: list[str], local: bool,
                  fallback_local: bool, sync: bool, tls_verify: bool | None, sync_deletions: bool = False) -> int | None:
    """`tbx run --arch A CMD` when A has a connection: its exit code; None: run it here."""
    a = archmod.resolve(arch)
    res = Result(a.name)
    on_node = plan_nodes([a], connections, local, fallback_local, {a.name: res})
    if res.error:
        _raise_for(a, res)
    if res.fallback:
        output.warn(f"{a.name}: running here instead (--fallback-local): {res.fallback}")
    if a.name not in on_node:
        return None
    for s in res.skipped:
        output.note(f"{a.name}: {s['error']}; using {on_node[a.name][0].name}")
    ship = remote.files_to_sync(os.getcwd()) if sync else None
    lock, stopping, procs = threading.Lock(), threading.Event(), {}
    try:
        run_remote(a, res, on_node[a.name], command, _Plain(), procs, lock, stopping, image, ship, tls_verify,
                   fallback_local, sync_deletions)
    except KeyboardInterrupt:
        stop_all(procs, lock, stopping)
        raise
    if res.fallback:
        output.warn(f"{a.name}: running here instead (--fallback-local): {res.fallback}")
        return None
    if res.exit_code is None:
        _raise_for(a, res)
    return res.exit_code


def _raise_for(a: archmod.Arch, res: Result):
    """One arch's failure as tbx's error: one line per node when none of several answered."""
    if len(res.skipped) > 1 and (res.error or "").startswith("none of"):
        raise TbxError(f"none of the {len(res.skipped)} nodes for {a.name} answers", fix=res.fix,
                       details="\n".join(f"{s['connection']}: {s['error']}" for s in res.skipped))
    raise TbxError(res.error or "the command did not run", fix=res.fix, exit_code=125 if res.engine else 1)


def stop_all(procs: dict, lock: threading.Lock, stopping: threading.Event) -> list[str]:
    """Ctrl-C: stop the commands on the nodes, then their podman clients. Returns the arches."""
    with lock:
        stopping.set()
        running = [(n, p, s) for n, (p, s) in procs.items() if callable(s)]
    for _, proc, stop in running:
        if proc.poll() is None:
            try:
                stop()
            except TbxError:
                pass  # the node is gone: nothing runs there any more to stop
    for _, proc, _ in running:
        try:
            proc.wait(15)
        except Exception:  # noqa: BLE001 - TimeoutExpired; subprocess is not imported here
            proc.kill()
            proc.wait()
    return [n for n, _, _ in running]


def enter_remote(*, arch: str, image: str | None, connections: list[str], sync: bool,
                 sync_deletions: bool) -> int | None:
    """`tbx enter --arch A` when A has a connection: a login shell in A's container on that
    machine, on a real terminal (podman's own -it), in the shipped copy of the current directory;
    afterwards what was made or changed there comes back. The shell's exit status; None: A has
    no node (enter here)."""
    import subprocess

    a = archmod.resolve(arch)
    res = Result(a.name)
    on_node = plan_nodes([a], connections, False, False, {a.name: res})
    if res.error:
        raise TbxError(res.error, fix=res.fix)
    if a.name not in on_node:
        return None
    for s in res.skipped:
        output.note(f"{a.name}: {s['error']}; using {on_node[a.name][0].name}")
    node = on_node[a.name][0]
    name, ref = _remote_source(a, image, node)
    cwd = os.getcwd()
    ship = remote.files_to_sync(cwd) if sync else None
    run_id = os.urandom(6).hex()
    def say(line: str, err: bool) -> None:
        _Plain.line(a.name, line, err)

    got = remote.run(node, name, a, ref, [], ship=ship, tls_verify=None, on_line=say,
                     script=remote.SCRIPT_SHIP_ONLY if sync else remote.SCRIPT_PREPARE, run_id=run_id)
    if got.exit_code != 0:
        raise TbxError(got.error or f"could not prepare {cwd} in {name} on {node.name}", fix=got.fix,
                       exit_code=125 if got.engine else 1)
    term = os.environ.get("TERM", "xterm")
    shell = 'cd -- "$0" || exit 125; if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l'
    argv = [*node.podman, "exec", "-it", "--env", f"TERM={term}", "--env", f"{remote.RUN_ID}={run_id}", name,
            "/bin/sh", "-c", shell, cwd]
    rc = subprocess.call(argv)
    if sync:
        back = remote.run(node, name, a, None, [], ship=ship, tls_verify=None, on_line=say,
                          script=remote.SCRIPT_RESULTS_ONLY, run_id=run_id, sync_deletions=sync_deletions,
                          feed=False)
        if back.results:
            for line in back.results.summary():
                output.note(line)
        elif back.error:
            output.warn(f"nothing came back from {node.name}: {back.error}")
    return rc
