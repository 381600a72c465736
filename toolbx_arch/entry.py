"""The `tbx` console script. The everyday commands on their common shapes skip the CLI framework
(typer and click cost more than the podman call they wrap):

- ``tbx run -c NAME CMD…`` / ``tbx run --arch A CMD…`` and ``tbx enter NAME`` / ``--arch A`` on
  a ready container go straight to ``podman exec`` (``execspec``);
- ``tbx run --arch A[,B…] [--connection A=NAME]… …`` when an arch may go to a podman
  connection (given, or a [connections] table in a configuration file) runs its plain command
  function (a remote run is one ``podman --connection`` round trip; the framework would add a
  third to it);
- ``tbx list [--json] [-c] [-i] [--arch A]``, ``tbx rm [-f] NAME…`` and
  ``tbx create [NAME] --arch A [--image REF] [--userns M] [-y]`` run their plain command
  functions, which use only the standard library and the podman CLI.

Anything else, ``--help`` included, goes to the typer CLI (``cli``)."""

from __future__ import annotations

import sys


def _plain(fn) -> None:
    """Run a command function outside the CLI framework, with the CLI's error handling."""
    from .errors import TbxError

    try:
        rc = fn()
    except BrokenPipeError:  # `tbx list | head`: the reader is gone; nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 1
    except TbxError as e:
        from .output import print_error

        print_error(e)
        rc = e.exit_code
    if rc is not None:
        sys.exit(rc)


def _maps_arches() -> bool:
    from .execspec import may_map_arches

    return may_map_arches()


def _rm_args(argv: list[str]):
    force, names = False, []
    for a in argv:
        if a in ("-f", "--force"):
            force = True
        elif a.startswith("-"):
            return None
        else:
            names.append(a)
    return (names, force) if names else None


def _create_args(argv: list[str]):
    """``tbx create [NAME] --arch A [--image REF] [--userns M] [--cpu MODEL] [-y]`` (any order), or None."""
    opts = {"--arch": "arch", "--platform": "arch", "--image": "image", "-i": "image", "--userns": "userns",
            "--cpu": "cpu"}
    got: dict = {"name": None, "arch": None, "image": None, "userns": None, "cpu": None, "yes": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        key, _, val = a.partition("=")
        if a in ("-y", "--assumeyes"):
            got["yes"] = True
        elif key in opts and "=" in a and key.startswith("--"):
            if got[opts[key]] is not None or not val:
                return None
            got[opts[key]] = val
        elif a in opts:
            if i + 1 >= len(argv) or got[opts[a]] is not None or argv[i + 1].startswith("-"):
                return None
            got[opts[a]] = argv[i + 1]
            i += 1
        elif a.startswith("-") or got["name"] is not None:
            return None
        else:
            got["name"] = a
        i += 1
    return got if got["arch"] else None


_RUN_VALUES = {"--arch": "arch", "--platform": "arch", "--image": "image", "-i": "image", "--jobs": "jobs",
               "-j": "jobs", "--connection": "connections"}
_RUN_FLAGS = {"--tls-verify": ("tls_verify", True), "--no-tls-verify": ("tls_verify", False),
              "--sync": ("sync", True), "--no-sync": ("sync", False), "--local": ("local", True),
              "--fallback-local": ("fallback_local", True), "--create": ("create_missing", True),
              "--json": ("json_out", True)}


def _run_args(argv: list[str]):
    """``tbx run --arch A[,B…] [--connection A=NAME]… [--image REF] [flags] [--] CMD…``: (command,
    keyword arguments of commands.run.run), or None (any other shape: the CLI parses it)."""
    got: dict = {"container": None, "arch": None, "image": None, "distro": None, "release": None, "jobs": None,
                 "create_missing": False, "json_out": False, "tls_verify": None, "connections": [],
                 "local": False, "fallback_local": False, "sync": True}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--" or not a.startswith("-"):
            command = argv[i + 1:] if a == "--" else argv[i:]
            if not command or not got["arch"]:
                return None
            if got["jobs"] is not None:
                if not (got["jobs"].isascii() and got["jobs"].isdigit()) or int(got["jobs"]) < 1:
                    return None
                got["jobs"] = int(got["jobs"])
            return command, got
        key, eq, val = a.partition("=")
        if a in _RUN_FLAGS:
            k, v = _RUN_FLAGS[a]
            got[k] = v
        elif key in _RUN_VALUES:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                val, i = argv[i + 1], i + 1
            k = _RUN_VALUES[key]
            if k == "connections":
                got[k].append(val)
            elif got[k] is not None or not val:
                return None
            else:
                got[k] = val
        else:
            return None
        i += 1
    return None


def main() -> None:
    import signal

    got = {"sig": signal.SIGINT}

    def interrupted(signum, frame):  # until the command installs its own: no traceback, ever
        got["sig"] = signum
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        _main()
    except KeyboardInterrupt:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        print("tbx: interrupted", file=sys.stderr)
        sys.exit(128 + int(got["sig"]))


def _main() -> None:
    from .paths import root_environment

    root_environment()  # root trusts only root's files: never another user's XDG directories
    args = sys.argv[1:]
    if "--json" in args or "--format" in args or "--format=json" in args:
        from . import output

        args, output.json_errors = output.normalize_json_args(args)
    head = args[:1]
    try:
        if head == ["run"]:
            from .execspec import fast_run

            fast_run(args[1:])  # execs podman when it applies
        elif head == ["enter"]:
            from .execspec import fast_enter

            fast_enter(args[1:])
    except Exception:  # the normal path reports any problem properly
        pass
    if head == ["run"] and ("--connection" in args or any(a.startswith("--connection=") for a in args)
                            or _maps_arches()):
        parsed = _run_args(args[1:])
        if parsed is not None:  # a run that may go to a podman connection's machine
            from .commands.run import run

            _plain(lambda: run(parsed[0], **parsed[1]))
    if head == ["list"]:
        from .commands.list import fast

        _plain(lambda: fast(args[1:]))
    elif head == ["rm"] and _rm_args(args[1:]) is not None:
        from .commands.rm import rm

        names, force = _rm_args(args[1:])
        _plain(lambda: rm(names, force=force, all_=False))
    elif head == ["create"] and _create_args(args[1:]) is not None:
        from .commands.create import create

        a = _create_args(args[1:])
        _plain(lambda: create(distro=None, release=None, authfile=None, tls_verify=None, **a))
    from .cli import main as cli_main

    cli_main(args)
