"""The only module that runs other programs (podman CLI, skopeo, …).

Every command is logged at debug level (``tbx --log-level debug``), and a missing program is a
TbxError with the install command for this host's distribution, never a traceback.
"""

from __future__ import annotations

import os
import sys

from .errors import TbxError

# Annotations below (Sequence, NoReturn, subprocess.Popen) are never evaluated: importing
# typing and subprocess here would cost `tbx run` ~10 ms before podman even starts.


def _debug(argv: list[str]) -> None:
    """Log a command at debug level; logging is only configured (imported) by the full CLI."""
    logging = sys.modules.get("logging")
    if logging is not None:
        import shlex

        logging.getLogger("tbx").debug("run: %s", shlex.join(argv))


def which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def require(name: str) -> str:
    path = which(name)
    if path is None:
        from . import hostinfo

        raise TbxError(f"{name} is not installed (not found in PATH)",
                       fix=hostinfo.install_command(name))
    return path


def _argv(args: Sequence[str]) -> list[str]:
    argv = [str(a) for a in args]
    argv[0] = require(argv[0]) if "/" not in argv[0] else argv[0]
    _debug(argv)
    return argv


def run(args: Sequence[str], *, capture: bool = True, input: str | bytes | None = None,
        env: dict | None = None, timeout: float | None = None, text: bool = True) -> subprocess.CompletedProcess:
    """Run to completion; never raises for a non-zero exit (callers decide what it means)."""
    import subprocess

    argv = _argv(args)
    try:
        return subprocess.run(argv, input=input, env=env, timeout=timeout, text=text,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None,
                              stdin=None if input is not None else subprocess.DEVNULL if capture else None)
    except subprocess.TimeoutExpired as e:
        import shlex

        raise TbxError(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f} s",
                       details=shlex.join(argv)) from e


def popen(args: Sequence[str], **kwargs) -> "subprocess.Popen":
    import subprocess

    return subprocess.Popen(_argv(args), **kwargs)


def execvp(args: Sequence[str], env: dict | None = None) -> NoReturn:
    """Hand this process over to another program (the terminal goes with it)."""
    argv = [str(a) for a in args]
    _debug(argv)
    try:
        if env is None:
            os.execvp(argv[0], argv)
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        require(argv[0])  # raises with the install command
        raise
