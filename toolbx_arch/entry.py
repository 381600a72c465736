"""The `tbx` console script. The everyday commands on their common shapes skip the CLI framework
(typer and click cost more than the podman call they wrap):

- ``tbx run -c NAME CMD…`` / ``tbx run --arch A CMD…`` and ``tbx enter NAME`` / ``--arch A`` on
  a ready container go straight to ``podman exec`` (``execspec``);
- ``tbx run --arch A[,B…] [--connection A=NAME]… …`` when an arch may go to a podman
  connection (given, or a [connections] table in a configuration file) runs its plain command
  function (a remote run is one ``podman --connection`` round trip; the framework would add a
  third to it);
- ``tbx list``, ``tbx rm [-f] NAME…`` and ``tbx create [NAME] --arch A [--image REF] [--userns M]
  [--cpu MODEL] [-y]`` run their plain command functions, which use only the standard library and
  the podman CLI.

Each fast path reads its options with ``grammar`` (the CLI's own table) and declines any other
shape; anything declined, ``--help`` included, goes to the typer CLI (``cli``). Root options
before the command (``--log-level``) apply to both. One top level (``toplevel.run``) guards all.
"""

from __future__ import annotations

import sys


def main() -> None:
    from .toplevel import run

    run(_main)


def _rm_args(argv: list[str]):
    """(names, force) of ``tbx rm [-f] NAME…``, or None."""
    from .grammar import FAST, flag, scan

    got = scan("rm", argv, FAST["rm"])
    if got is None or not got[1]:
        return None
    return got[1], flag(got[0], "force")


def _create_args(argv: list[str]):
    """The keyword arguments of commands.create.create for ``tbx create [NAME] --arch A [--image REF]
    [--userns M] [--cpu MODEL] [-y]`` (any order), or None."""
    from .grammar import FAST, flag, one, scan

    got = scan("create", argv, FAST["create"])
    if got is None or len(got[1]) > 1:
        return None
    values, words = got
    kw = {k: one(values, k) for k in ("arch", "image", "userns", "cpu")}
    if kw["arch"] is None or ... in kw.values():
        return None
    return {"name": words[0] if words else None, **kw, "yes": flag(values, "yes")}


def _run_args(argv: list[str]):
    """``tbx run --arch A[,B…] [--connection A=NAME]… [--image REF] [flags] [--] CMD…``: (command,
    keyword arguments of commands.run.run), or None (any other shape: the CLI parses it)."""
    from .grammar import FAST, flag, one, scan

    got = scan("run", argv, FAST["run"] - {"-c", "--container"}, command_follows=True)  # by arch only
    if got is None or not got[1]:
        return None
    values, command = got
    kw: dict = {k: one(values, k) for k in ("arch", "image", "jobs")}
    if kw["arch"] is None or ... in kw.values():
        return None
    if kw["jobs"] is not None:
        if not (kw["jobs"].isascii() and kw["jobs"].isdigit()) or int(kw["jobs"]) < 1:
            return None
        kw["jobs"] = int(kw["jobs"])
    kw.update(container=None, distro=None, release=None, connections=values.get("connection", []),
              create_missing=flag(values, "create_missing"), json_out=flag(values, "json_out"),
              tls_verify=values["tls_verify"][-1] if "tls_verify" in values else None,
              local=flag(values, "local"), fallback_local=flag(values, "fallback_local"),
              sync=flag(values, "sync", True), sync_deletions=flag(values, "sync_deletions"))
    return command, kw


def _main() -> int | None:
    from .grammar import log_level, normalize_json_args, split_root
    from .paths import root_environment

    root_environment()  # root trusts only root's files: never another user's XDG directories
    args = sys.argv[1:]
    if "--json" in args or "--format" in args or "--format=json" in args:
        from . import output

        args, output.json_errors = normalize_json_args(args)
    root, rest = split_root(args)
    level = log_level(root)
    if level is None:  # a level that does not exist: the CLI says so
        rest = []
    elif root:
        from .toplevel import set_log_level

        set_log_level(level)
    head, tail = rest[:1], rest[1:]
    try:
        if head == ["run"]:
            from .execspec import fast_run

            fast_run(tail)  # execs podman when it applies
        elif head == ["enter"]:
            from .execspec import fast_enter

            fast_enter(tail)
    except (OSError, ValueError):  # a status file that cannot be read: the normal path reports it
        pass
    if head == ["run"] and ("--connection" in tail or any(a.startswith("--connection=") for a in tail)
                            or _maps_arches()):
        parsed = _run_args(tail)
        if parsed is not None:  # a run that may go to a podman connection's machine
            from .commands.run import run

            return run(parsed[0], **parsed[1])
    if head == ["list"]:
        from .commands.list import fast

        rc = fast(tail)
        if rc is not None:
            return rc
    elif head == ["rm"] and (rm_args := _rm_args(tail)) is not None:
        from .commands.rm import rm

        return rm(rm_args[0], force=rm_args[1], all_=False)
    elif head == ["create"] and (create_args := _create_args(tail)) is not None:
        from .commands.create import create

        return create(distro=None, release=None, authfile=None, tls_verify=None, **create_args)
    from .cli import invoke

    return invoke(args)


def _maps_arches() -> bool:
    from .execspec import may_map_arches

    return may_map_arches()
