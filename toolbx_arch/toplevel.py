"""The one top level: runs a command (a fast path's command function, or the CLI framework) and
turns what it raises into a message and an exit code: TbxError (its message, details and fix),
a usage error (the fix names the command's --help), an internal error (one line asking for a
report; the traceback with --log-level debug), Ctrl-C/SIGTERM/SIGHUP (``tbx: interrupted``,
128+signal), a reader gone (``tbx list | head``). After the work, signals are ignored so that a
finished command is not turned into a killed one while the interpreter shuts down.

Test mode: with TBX_INTERNAL_ERRORS set to a file, every internal error's traceback is appended
to it; the test suites fail when it is not empty at the end.
"""

from __future__ import annotations

import os
import sys

_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def set_log_level(level: str) -> None:
    """The root option --log-level, for the CLI and the fast paths alike."""
    import logging

    logging.basicConfig(level=getattr(logging, level.upper()), format="tbx: %(levelname)s: %(message)s",
                        stream=sys.stderr)
    os.environ["TBX_LOG_LEVEL"] = level


def _report_internal(e: BaseException) -> None:
    path = os.environ.get("TBX_INTERNAL_ERRORS")
    if path:
        import traceback

        with open(path, "a") as f:
            f.write(f"tbx {' '.join(sys.argv[1:])}\n{traceback.format_exc()}\n")
    print(f"Error: internal error: {type(e).__name__}: {e}\n"
          "Run again with 'tbx --log-level debug …' for the traceback, and report it.", file=sys.stderr)


def run(fn) -> None:
    """Run ``fn()`` and exit with its code (None: 0)."""
    import signal

    from .errors import TbxError

    caught = {"sig": signal.SIGINT, "hit": False}

    def as_interrupt(signum, frame):  # SIGTERM and SIGHUP get Ctrl-C's clean-up
        caught["sig"], caught["hit"] = signum, True
        raise KeyboardInterrupt

    sigs = [getattr(signal, s) for s in _SIGNALS]
    for sig in sigs:
        signal.signal(sig, as_interrupt)
    rc = 0
    try:
        rc = fn()
    except TbxError as e:
        from .output import print_error

        print_error(e)
        rc = e.exit_code
    except BrokenPipeError:  # `tbx list | head`: the reader is gone; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 1
    except KeyboardInterrupt:
        caught["hit"] = True
    except SystemExit as e:  # a command function's own sys.exit
        rc = e.code
    except Exception as e:  # a bug: a traceback only with --log-level debug
        if os.environ.get("TBX_LOG_LEVEL") == "debug":
            raise
        _report_internal(e)
        rc = 1
    for sig in sigs:
        signal.signal(sig, signal.SIG_IGN)
    if caught["hit"]:
        print("tbx: interrupted", file=sys.stderr)
        rc = 128 + int(caught["sig"])
    sys.exit(rc)
