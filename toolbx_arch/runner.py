"""The only module that runs other programs (podman CLI, skopeo, …).

Every command is logged at debug level (``tbx --log-level debug``), and a missing program is a
TbxError naming it (shown with the install command for this host's distribution), never a
traceback.
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
    if path is None:  # the install command for this host is added where the error is shown
        raise TbxError(f"{name} is not installed (not found in PATH)", missing_tool=name)
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


def _die_with_parent() -> None:  # pragma: no cover (runs in the child before exec)
    import ctypes

    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


def popen(args: Sequence[str], *, die_with_parent: bool = False, **kwargs) -> "subprocess.Popen":
    """Start a program; ``die_with_parent``: it is killed when tbx dies, even by SIGKILL (a pull
    must not go on storing an image after its tbx is gone)."""
    import subprocess

    if die_with_parent:
        import ctypes  # noqa: F401 - imported before the fork, not in the child

        kwargs["preexec_fn"] = _die_with_parent
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


def in_namespaces(pid: int, kinds: Sequence[str], fn, *, what: str) -> str:
    """Run ``fn(libc)`` in a forked child that has joined the namespaces ``kinds`` ("user",
    "mnt") of process ``pid``; return its message, or raise TbxError with it.

    No program is executed and nothing is imported in the child: once it has joined a
    container's mount namespace, every path resolves inside the container, so ``fn`` may only
    make system calls (through the preloaded ``libc``) and use built-in functions.
    """
    import ctypes

    flags = {"user": 0x10000000, "mnt": 0x00020000}  # CLONE_NEWUSER, CLONE_NEWNS
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns, libc.mount, libc.prctl  # resolve the symbols before the fork
    fds = []
    try:
        for k in kinds:
            fds.append(os.open(f"/proc/{pid}/ns/{k}", os.O_RDONLY | os.O_CLOEXEC))
    except OSError as e:
        for fd in fds:
            os.close(fd)
        raise TbxError(f"{what}: cannot open the namespaces of process {pid} ({e.strerror})") from None
    _debug(["<setns>", str(pid), *kinds])
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        code, msg = 1, "failed"
        try:
            os.close(r)
            libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: never outlive tbx
            for fd, k in zip(fds, kinds):
                if libc.setns(fd, flags[k]) != 0:
                    raise OSError(ctypes.get_errno(), "joining the container's " + k + " namespace failed")
            ok, msg = fn(libc)
            code = 0 if ok else 1
        except BaseException as e:  # noqa: BLE001 - reported through the pipe
            msg = str(e)
        try:
            os.write(w, msg.encode("utf-8", "replace")[:4000])
        finally:
            os._exit(code)
    os.close(w)
    for fd in fds:
        os.close(fd)
    chunks = []
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(child, 0)
    msg = b"".join(chunks).decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise TbxError(f"{what}: {msg or 'failed'}")
    return msg
