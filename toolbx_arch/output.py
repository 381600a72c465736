"""One place that decides how results look: rich tables on a terminal, plain text elsewhere,
JSON with --json, error messages (``print_error``), and the two kinds of message any module may
give: ``warn`` (``Warning: …``) and ``note`` (``tbx: …``). Modules print nothing else on their own:
commands hand their data here. ``json_errors`` is set by the entry point when the command line
asked for JSON, so that errors come as JSON on stdout too."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from .errors import TbxError


JSON_SCHEMA = 1
json_errors = False  # set by the entry point when the command was given --json / --format json

def _add_install_fix(e: TbxError) -> None:
    """A missing program's fix is this host's install command (the host is known up here)."""
    if e.missing_tool and not e.fix:
        from .hostinfo import install_command

        e.fix = install_command(e.missing_tool)


def error_json(e: TbxError) -> dict:
    _add_install_fix(e)
    return {"schema": JSON_SCHEMA, "error": {"message": e.message, "fix": e.fix, "details": e.details,
                                             "exit_code": e.exit_code}}


def print_error(e: TbxError) -> None:
    if json_errors:  # scripts read stdout; the human form still goes to stderr
        print(json.dumps(error_json(e), indent=2), flush=True)
    _add_install_fix(e)
    lines = [f"Error: {e.message}"]
    if e.details:
        lines.append(e.details)
    if e.fix:
        lines.append(f"Fix: {e.fix}")
    print("\n".join(lines), file=sys.stderr)


def warn(msg: str) -> None:
    """Something the user should know went wrong or is risky (stderr, ``Warning:``)."""
    print(f"Warning: {msg}", file=sys.stderr)


def note(msg: str) -> None:
    """What tbx did or decided on the user's behalf (stderr, ``tbx:``; scripts see it too)."""
    print(f"tbx: {msg}", file=sys.stderr, flush=True)


def info(msg: str) -> None:
    """Progress/status text: to stderr, only when stderr is a terminal (quiet in scripts)."""
    if sys.stderr.isatty():
        print(msg, file=sys.stderr)


def line(msg: str) -> None:
    """A result line on stdout (for scripts too)."""
    print(msg, flush=True)


COLOURS = ("36", "33", "35", "32", "34", "31", "96")


class PrefixPrinter:
    """Lines of several concurrent jobs, each prefixed with its name (coloured on a terminal)."""

    def __init__(self, names: Sequence[str], quiet: bool) -> None:
        import threading

        self.lock = threading.Lock()
        self.quiet = quiet
        tty = sys.stdout.isatty()
        width = max(len(n) for n in names)
        self.prefix = {}
        for i, n in enumerate(names):
            p = f"[{n}]".ljust(width + 2)
            self.prefix[n] = f"\033[{COLOURS[i % len(COLOURS)]}m{p}\033[0m" if tty else p

    def line(self, name: str, text: str, err: bool) -> None:
        if self.quiet:
            return
        with self.lock:
            stream = sys.stderr if err else sys.stdout
            stream.write(f"{self.prefix[name]} {text}\n")
            stream.flush()


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=not sys.stdout.isatty())


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, plain: bool = False) -> None:
    """A table: rich on a terminal, tab-free aligned plain text otherwise (easy to grep), or
    always plain (``plain``: the fast commands do not load rich)."""
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    if sys.stdout.isatty() and not plain:
        from rich.table import Table

        t = Table(title=title, title_justify="left", show_lines=False)
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*r)
        _console().print(t)
        return
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    if title:
        print(title)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def human_size(n: int | float | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


# --- check ---------------------------------------------------------------------------------

def _emulator_cell(r) -> str:
    """The EMULATOR column of tbx check: the host entry (host mode), or the emulator with its
    pulled name and QEMU version when known."""
    emu = r.emulator
    if r.mode != "emulated":
        return "-"
    if r.binfmt_mode == "host":
        return f"host entry {r.host_entry or '(none usable)'}"
    if emu is None:
        return "not found"
    if emu.pulled:
        return f"{emu.pulled} (QEMU {emu.version or '?'}): {emu.path}"
    return emu.path + (f" (QEMU {emu.version})" if emu.version else "")


def _where_cell(r) -> str:
    """local native / compat / emulated, or remote native via NAME (podman VERSION), or why not."""
    w = r.where or {}
    if w.get("kind") != "remote":
        return f"local {r.mode}"
    if not w.get("uri"):
        return f"{w['connection']}: no such connection"
    if not w.get("reachable"):
        return f"{w['connection']}: not answering"
    if w.get("arch") != r.arch:
        return f"{w['connection']}: runs {w.get('arch')}"
    skipped = ", ".join(w.get("skipped") or [])
    return f"remote native via {w['connection']} (podman {w.get('podman') or '?'})" + \
        (f"; {skipped} not answering" if skipped else "")


def render_check(report) -> None:
    h = report.host
    host_rows = [
        ("host", f"{h.arch}, {h.distro}"),
        ("kernel", f"{h.kernel} ({'binfmt_misc per user namespace' if h.kernel_ok else 'too old: needs >= 6.7'})"),
        ("user", f"{h.user} ({'rootless' if h.rootless else 'root'}; user namespace layout {h.userns.get('layout')})"),
        ("podman", h.podman or "MISSING"),
        ("skopeo", h.skopeo or "MISSING"),
        ("OCI runtime", h.oci_runtime or "unknown"),
        ("host binfmt_misc", (f"{h.binfmt_misc}, {h.binfmt_entries.get('enabled', 0)} of "
                              f"{h.binfmt_entries.get('total', 0)} entries enabled"
                              if h.binfmt_misc != "not mounted" else "not mounted")
                             + (" (tbx needs none)" if h.binfmt_mode == "private" else "")),
        ("binfmt mode", "private: each container registers its emulator in its own binfmt_misc"
                        if h.binfmt_mode == "private" else "host: the host's enabled entries (with the F flag) "
                                                          "run emulated programs; tbx only reads them"),
    ]
    width = max(len(k) for k, _ in host_rows)
    for k, v in host_rows:
        print(f"{k.ljust(width)}  {v}")
    print()
    rows = []
    for r in report.arches:
        emu = r.emulator
        rows.append((r.arch, r.oci_arch, _where_cell(r),
                     _emulator_cell(r),
                     ("yes" if emu.static else "no") if emu and emu.static is not None else "-",
                     "yes" if r.ready else "NO",
                     r.problems[0].problem if r.problems else ""))
    table(None, ["ARCH", "OCI", "WHERE", "EMULATOR", "STATIC", "READY", "PROBLEM"], rows)
    problems = [(None, p) for p in h.problems] + [(r.arch, p) for r in report.arches for p in r.problems]
    notes = [(r.arch, n) for r in report.arches for n in r.notes
             if "lacks the C flag" in n or n.startswith(("host mode", "acceleration"))]
    if problems:
        print("\nProblems and fixes:")
        for where, p in problems:
            print(f"  - {where + ': ' if where else ''}{p.problem}\n    fix: {p.fix}")
    if notes:
        print("\nNotes:")
        for where, n in notes:
            print(f"  - {where}: {n}")
    print("\n" + ("Ready." if report.ready else "Not ready: see the fixes above."))


def wait_all(futures) -> None:
    """Wait for parallel jobs' futures in turn, in short slices, so that Ctrl-C reaches the main
    thread (a plain ``result()`` blocks it until the worker ends)."""
    for f in futures:
        while True:
            try:
                f.result(timeout=0.2)
                break
            except TimeoutError:
                continue
