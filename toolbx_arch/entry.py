"""The `tbx` console script. ``tbx run -c NAME CMD…`` on a ready container goes straight to
``podman exec`` (see ``execspec.fast_run``); everything else goes to the typer CLI."""

from __future__ import annotations

import sys


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        try:
            from .execspec import fast_run

            fast_run(args[1:])  # execs podman when it applies
        except Exception:  # the normal path reports any problem properly
            pass
    from .cli import main as cli_main

    cli_main(args)
