"""The only module that runs other programs (podman CLI, skopeo, …).

Every command is logged at debug level (``tbx --log-level debug``), and a missing program is a
TbxError with the install command for this host's distribution, never a traceback.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from typing import NoReturn, Sequence

from .errors import TbxError

log = logging.getLogger("tbx")


def which(name: str) -> str | None:
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
    log.debug("run: %s", shlex.join(argv))
    return argv


def run(args: Sequence[str], *, capture: bool = True, input: str | bytes | None = None,
        env: dict | None = None, timeout: float | None = None, text: bool = True) -> subprocess.CompletedProcess:
    """Run to completion; never raises for a non-zero exit (callers decide what it means)."""
    argv = _argv(args)
    try:
        return subprocess.run(argv, input=input, env=env, timeout=timeout, text=text,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None,
                              stdin=None if input is not None else subprocess.DEVNULL if capture else None)
    except subprocess.TimeoutExpired as e:
        raise TbxError(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f} s",
                       details=shlex.join(argv)) from e


def popen(args: Sequence[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(_argv(args), **kwargs)


def execvp(args: Sequence[str], env: dict | None = None) -> NoReturn:
    """Hand this process over to another program (the terminal goes with it)."""
    argv = _argv(args)
    if env is None:
        os.execv(argv[0], argv)
    os.execve(argv[0], argv, env)
