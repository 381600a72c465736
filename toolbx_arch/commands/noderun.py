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
                 "fallback", "_pidfile")
    FIELDS = ("arch", "container", "exit_code", "seconds", "stdout", "stderr", "error", "fix", "where", "fallback")

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
        self._pidfile: str | None = None

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


def run_remote(a: archmod.Arch, res: Result, node: nodes.Node, command: list[str], printer,
                procs: dict, lock: threading.Lock, stopping: threading.Event, image: str | None,
                paths: list[str] | None, tls_verify: bool | None, fallback: bool = False) -> None:
    start = time.monotonic()
    res.where = node.name
    try:
        name, ref = _remote_source(a, image, node)
        res.container = name

        def started(proc, stop):
            with lock:
                procs[a.name] = (proc, stop)
                late = stopping.is_set()
            if late:  # Ctrl-C came while it started
                stop()
                proc.terminate()

        got = remote.run(node, name, a, ref, command, sync_paths=paths, tls_verify=tls_verify,
                         on_line=lambda line, err: printer.line(a.name, line, err), started=started)
        if got.unreachable and fallback:  # run here afterwards, from the main thread (it may create)
            res.where, res.fallback, res.container = "local", got.error, None
            return
        res.exit_code, res.error, res.fix = got.exit_code, got.error, got.fix
        res.stdout, res.stderr = "\n".join(got.stdout), "\n".join(got.stderr)
        if stopping.is_set() and res.exit_code != 0:
            res.error = "interrupted"
    except TbxError as e:
        res.error, res.fix, res.exit_code = e.message, e.fix, None
    finally:
        res.seconds = round(time.monotonic() - start, 3)


def plan_nodes(wanted: list[archmod.Arch], pairs: list[str], local: bool, fallback_local: bool,
               results: dict[str, "Result"]) -> dict[str, nodes.Node]:
    """The arches that run on a node: {arch name: node}. An unreachable node fails its arch's
    result (or, with --fallback-local, leaves it to run here, saying so); a node of another
    arch is refused."""
    from ..config import load

    plan = nodes.mapping(wanted, pairs, local, load().connections)
    if not plan:
        return {}
    states = nodes.remembered_arches(plan)
    nodes.check_arches(plan, states)
    out = {}
    for a, node in plan.items():
        s = states[node.name]
        if s.reachable:
            out[a.name] = node
        elif fallback_local:
            results[a.name].fallback = s.error
        else:
            r = results[a.name]
            r.where, r.error, r.fix = node.name, s.error, s.fix
    return out


class _Plain:
    """One arch's output as it comes, with no prefix (tbx run --arch A on a node)."""

    @staticmethod
    def line(_name: str, text: str, err: bool) -> None:
        stream = sys.stderr if err else sys.stdout
        stream.write(text + "\n")
        stream.flush()


def single_remote(command: list[str], *, arch: str, image: str | None, connections: list[str], local: bool,
                  fallback_local: bool, sync: bool, tls_verify: bool | None) -> int | None:
    """`tbx run --arch A CMD` when A has a connection: its exit code; None: run it here."""
    a = archmod.resolve(arch)
    res = Result(a.name)
    on_node = plan_nodes([a], connections, local, fallback_local, {a.name: res})
    if res.error:
        raise TbxError(res.error, fix=res.fix, exit_code=125)
    if res.fallback:
        output.warn(f"{a.name}: running here instead (--fallback-local): {res.fallback}")
    if a.name not in on_node:
        return None
    paths = remote.files_to_sync(os.getcwd()) if sync else None
    lock, stopping, procs = threading.Lock(), threading.Event(), {}
    try:
        run_remote(a, res, on_node[a.name], command, _Plain(), procs, lock, stopping, image, paths, tls_verify,
                   fallback_local)
    except KeyboardInterrupt:
        stop_all(procs, lock, stopping)
        raise
    if res.fallback:
        output.warn(f"{a.name}: running here instead (--fallback-local): {res.fallback}")
        return None
    if res.exit_code is None:
        raise TbxError(res.error or "the command did not run", fix=res.fix, exit_code=125)
    return res.exit_code


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
