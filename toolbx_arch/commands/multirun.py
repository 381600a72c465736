"""`tbx run --arch A,B,… CMD`: the same command in one container per architecture, concurrently.

Each output line is prefixed with its arch; a table (or --json) reports each arch's container,
exit code and wall time. Partial failure is a normal outcome (exit 1, the table says which);
a missing container is that arch's result, the others still run. Ctrl-C stops every command,
inside the containers too, and leaves no exec session behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from .. import arch as archmod
from .. import containers, execspec, hostspec, output, remote, runner, status
from ..config import load
from ..hostinfo import os_release
from ..errors import TbxError
from ..resolve import target
from ..shortnames import qualify
from .noderun import Result, plan_nodes, run_remote, stop_all

def _parse_arches(spec: str) -> list[archmod.Arch]:
    out: list[archmod.Arch] = []
    for part in spec.split(","):
        a = archmod.resolve(part)
        if a not in out:
            out.append(a)
    return out


def _container_for(a: archmod.Arch, image: str | None, create_missing: bool, tls_verify: bool | None = None) -> containers.Info:
    if image:
        t = target(image=image, distro=None, release=None, arch=a.name, cfg=load(), host_release=os_release,
                   qualify=qualify)
        if create_missing and containers.inspect(t.container) is None:
            from .create import create

            import contextlib

            with contextlib.redirect_stdout(sys.stderr):  # stdout is the commands' output (or --json)
                create(name=None, arch=a.name, image=t.ref, distro=None, release=None, authfile=None,
                       tls_verify=tls_verify, userns=None, yes=True, nested=True)
        try:
            return containers.find(t.container, a.name)
        except TbxError as e:
            if not e.fix:
                e.fix = (f"Create it: tbx create --arch {a.name} --image {image} (or add --create); an arch on a "
                         "node takes --image for its container there")
            raise
    try:
        return containers.find(None, a.name)
    except TbxError as e:
        if create_missing and "there is no" in e.message:
            raise TbxError(f"no {a.name} container, and --create needs --image to make one") from e
        raise


def _run_one(a: archmod.Arch, res: Result, command: list[str], printer: output.PrefixPrinter, procs: dict,
             lock: threading.Lock, stopping: threading.Event, find) -> None:
    start = time.monotonic()
    try:
        info = find(a)
        res.container = info.name
        containers.ensure_running(info)
        token = uuid.uuid4().hex[:12]
        res._pidfile = f"{hostspec.STATUS_DIR}/run-{token}.pid"
        # A tiny wrapper records the command's PID so Ctrl-C can stop it inside the container.
        wrapped = ["/bin/sh", "-c", f'echo $$ > {res._pidfile}; exec "$@"', "tbx-run", *command]
        argv = containers.exec_argv(info, wrapped, user=execspec.invoking_user(), interactive=False, tty=False)
        # Its own session: a terminal's Ctrl-C reaches tbx only, which stops the command inside and
        # lets this client exit by itself (it then removes its exec session).
        # Checking "stopping", starting and registering happen under one lock, which the
        # interrupt handler also takes: a command is either registered (and stopped) or never run.
        with lock:
            if stopping.is_set():
                raise TbxError("interrupted")
            proc = runner.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, bufsize=1, errors="replace", start_new_session=True)
            procs[a.name] = (proc, info)
        out_lines: list[str] = []
        err_lines: list[str] = []

        def pump(stream, sink, err):
            for line in stream:
                line = line.rstrip("\n")
                sink.append(line)
                printer.line(a.name, line, err)

        t = threading.Thread(target=pump, args=(proc.stderr, err_lines, True), daemon=True)
        t.start()
        pump(proc.stdout, out_lines, False)
        t.join()
        res.exit_code = proc.wait()
        res.stdout = "\n".join(out_lines)
        res.stderr = "\n".join(err_lines)
        if stopping.is_set() and res.exit_code != 0:
            res.error = "interrupted"
    except TbxError as e:
        res.error, res.fix = e.message, e.fix
        res.exit_code = None
    finally:
        res.seconds = round(time.monotonic() - start, 3)
        if res._pidfile and res.container:
            status.unlink(res.container, os.path.basename(res._pidfile))


def _stop_inside(res: Result, info: containers.Info, proc: subprocess.Popen) -> None:
    """Stop the command inside the container (podman exec does not forward signals). A Ctrl-C
    right after start may come before the wrapper wrote its PID: wait for it while the client runs."""
    if not res._pidfile:
        return
    deadline = time.monotonic() + 10
    while True:
        try:
            pid = int((status.read_small(info.name, os.path.basename(res._pidfile)) or ("",))[0])
            break
        except ValueError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return
            time.sleep(0.05)
    script = (f"kill -TERM {pid} 2>/dev/null; i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt 30 ]; do "
              f"sleep 0.1; i=$((i+1)); done; kill -KILL {pid} 2>/dev/null; true")
    runner.run(["podman", "exec", info.name, "/bin/sh", "-c", script], timeout=30)


def multirun(command: list[str], *, arches: str, image: str | None, create_missing: bool, jobs: int | None,
             json_out: bool, tls_verify: bool | None = None, connections: list[str] = (), local: bool = False,
             fallback_local: bool = False, sync: bool = True, sync_deletions: bool = False) -> int:
    wanted = _parse_arches(arches)
    results = {a.name: Result(a.name) for a in wanted}
    on_node = plan_nodes(wanted, list(connections), local, fallback_local, results)
    ship = remote.files_to_sync(os.getcwd()) if on_node and sync else None
    printer = output.PrefixPrinter([a.name for a in wanted], quiet=json_out)
    workdir, moved = execspec.workdir_for(execspec.invoking_user())  # where the local arches run
    if moved and not json_out and any(a.name not in on_node for a in wanted):
        output.note(f"running in {workdir}: {moved}")
    procs: dict = {}
    lock = threading.Lock()
    stopping = threading.Event()

    def find(a):
        return _container_for(a, image, create_missing, tls_verify)

    def prepare(arches):  # creating (and pulling) is done one at a time, before anything runs
        if create_missing:
            for a in arches:
                try:
                    find(a)
                except TbxError as e:
                    results[a.name].error = e.message

    def run_round(arches) -> bool:
        """Run the arches concurrently; False: interrupted (everything stopped)."""
        pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2)
        futures = [pool.submit(run_remote, a, results[a.name], on_node[a.name], command, printer, procs, lock,
                               stopping, image, ship, tls_verify, fallback_local, sync_deletions)
                   if a.name in on_node else
                   pool.submit(_run_one, a, results[a.name], command, printer, procs, lock, stopping, find)
                   for a in arches]
        try:
            output.wait_all(futures)
        except KeyboardInterrupt:
            stopped = stop_all(procs, lock, stopping)  # on the nodes
            with lock:
                running = [(n, v) for n, v in procs.items() if n not in stopped]
            for name, (proc, info) in running:
                _stop_inside(results[name], info, proc)
            for name, (proc, info) in running:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            output.note("interrupted; stopped " + ", ".join([*stopped, *(n for n, _ in running)]))
            return False
        pool.shutdown(wait=True)
        return True

    prepare([a for a in wanted if a.name not in on_node and results[a.name].error is None])
    if not run_round([a for a in wanted if results[a.name].error is None]):
        return 130
    # --fallback-local: arches whose node stopped answering run here now
    again = [a for a in wanted if a.name in on_node and results[a.name].fallback and results[a.name].exit_code is None]
    for a in again:
        del on_node[a.name]
    prepare(again)
    if again and not run_round([a for a in again if results[a.name].error is None]):
        return 130

    ordered = [results[a.name] for a in wanted]
    ok = all(r.ok for r in ordered)
    if json_out:
        output.print_json({"schema": output.JSON_SCHEMA, "ok": ok, "command": command,
                           "workdir": workdir, "workdir_note": moved, "results": [r.as_dict() for r in ordered]})
    else:
        print()
        output.table(None, ["ARCH", "CONTAINER", "EXIT", "WHERE", "TIME", "RESULT"],
                     [(r.arch, r.container or "-", "-" if r.exit_code is None else r.exit_code,
                       r.where_cell,
                       f"{r.seconds:.2f}s", "ok" if r.ok else (r.error or "failed")) for r in ordered])
        for r in ordered:
            if r.fallback:
                output.warn(f"{r.arch}: ran here instead (--fallback-local): {r.fallback}")
            if r.fix and not r.ok:
                output.warn(f"{r.arch}: fix: {r.fix}")
    return 0 if ok else 1
