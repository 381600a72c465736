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
        env: dict | None = None, timeout: float | None = None, text: bool = True,
        stdin=None) -> subprocess.CompletedProcess:
    """Run to completion; never raises for a non-zero exit (callers decide what it means).
    ``stdin``: a file (another program's output) to read instead of ``input``."""
    import subprocess

    if stdin is None and input is None and capture:
        stdin = subprocess.DEVNULL
    argv = _argv(args)
    try:
        return subprocess.run(argv, input=input, env=env, timeout=timeout, text=text,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None,
                              stdin=stdin)
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


CONFINED_MAX_BYTES = 64 << 20   # a qemu-user binary is under 40 MB
_CONFINED_UID = 65534           # nobody: what root drops to before running an untrusted binary


def run_confined(path: str, args: Sequence[str], *, timeout: float = 20, max_output: int = 1 << 20) -> tuple[int, str, str]:
    """Run a static binary that tbx does not trust (an emulator it is about to register), confined,
    and return (exit code, stdout, stderr); a TbxError when it cannot be confined or overran.

    How: the file's bytes are copied into a sealed in-memory file first (what runs is what was
    checked, whatever its owner does later). A forked child drops to ``nobody`` when tbx is root,
    sets no_new_privs, enters new user, mount, PID, network, IPC and UTS namespaces that map only
    its own (unprivileged) id, makes its root an empty read-only tmpfs, and executes the in-memory
    copy as PID 1 of its namespace, with no capabilities, no file system to write, no network, and
    only stdout and stderr open. It is killed with everything it started at ``timeout`` seconds.
    """
    import ctypes
    import select
    import signal
    import time

    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare, libc.mount, libc.prctl, libc.chroot  # resolve the symbols before the fork
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise TbxError(f"cannot open {path}: {e.strerror}") from None
    try:
        size = os.fstat(src).st_size
        if size > CONFINED_MAX_BYTES:
            raise TbxError(f"{path} is {size >> 20} MiB; an emulator is at most {CONFINED_MAX_BYTES >> 20} MiB")
        mfd = os.memfd_create("tbx-confined", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        while os.sendfile(mfd, src, None, 1 << 20):
            pass
    finally:
        os.close(src)
    import fcntl

    fcntl.fcntl(mfd, 1033, 0x1 | 0x2 | 0x4 | 0x8)  # F_ADD_SEALS: seal, shrink, grow, write
    _debug(["<confined>", path, *args])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    argv = [os.path.basename(path), *[str(a) for a in args]]
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        code = 126
        try:
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.closerange(3, mfd)
            os.closerange(mfd + 1, 65536)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: never outlive tbx
            if os.getuid() == 0 or os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(_CONFINED_UID, _CONFINED_UID, _CONFINED_UID)
                os.setresuid(_CONFINED_UID, _CONFINED_UID, _CONFINED_UID)
                libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE (reset by the uid change): /proc/self is ours again
            uid, gid = os.getuid(), os.getgid()
            if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
                raise OSError(ctypes.get_errno(), "no_new_privs")
            # CLONE_NEWUSER | NEWNS | NEWPID | NEWNET | NEWIPC | NEWUTS
            if libc.unshare(0x10000000 | 0x00020000 | 0x20000000 | 0x40000000 | 0x08000000 | 0x04000000) != 0:
                raise OSError(ctypes.get_errno(), "cannot make the namespaces to confine it in")
            for f, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                fd = os.open(f"/proc/self/{f}", os.O_WRONLY)
                os.write(fd, text.encode())
                os.close(fd)
            if libc.mount(None, b"/", None, 0x4000 | 0x40000, None) != 0:  # MS_REC | MS_PRIVATE
                raise OSError(ctypes.get_errno(), "mount private")
            # an empty, read-only root: MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
            if libc.mount(b"tbx-confined", b"/tmp", b"tmpfs", 1 | 2 | 4 | 8, b"size=4k,mode=0555") != 0:
                raise OSError(ctypes.get_errno(), "mount tmpfs")
            if libc.chroot(b"/tmp") != 0:
                raise OSError(ctypes.get_errno(), "chroot")
            os.chdir("/")
            pid1 = os.fork()  # PID 1 of the new PID namespace: when it dies, all it started die
            if pid1 == 0:
                libc.prctl(1, signal.SIGKILL, 0, 0, 0)
                os.execve(mfd, argv, {"LC_ALL": "C"})
            _, st = os.waitpid(pid1, 0)
            code = os.waitstatus_to_exitcode(st)
            code = code if code >= 0 else 128 - code
        except BaseException as e:  # noqa: BLE001 - reported on stderr
            try:
                os.write(2, f"tbx: cannot run confined: {e}\n".encode())
            except OSError:
                pass
        os._exit(code & 0xFF)
    os.close(out_w)
    os.close(err_w)
    os.close(mfd)
    bufs = {out_r: bytearray(), err_r: bytearray()}
    live = [out_r, err_r]
    deadline = time.monotonic() + timeout
    overran = None
    try:
        while live and not overran:
            left = deadline - time.monotonic()
            if left <= 0:
                overran = f"did not finish within {timeout:.0f} s"
                break
            for fd in select.select(live, [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    live.remove(fd)
                bufs[fd] += chunk
                if len(bufs[fd]) > max_output:
                    overran = f"wrote more than {max_output >> 10} KiB"
    finally:
        if overran:
            os.kill(child, signal.SIGKILL)
        os.close(out_r)
        os.close(err_r)
        _, st = os.waitpid(child, 0)
    if overran:
        raise TbxError(f"{path} {overran} when run confined; it is not a working emulator")
    return (os.waitstatus_to_exitcode(st), bufs[out_r].decode("utf-8", "replace"),
            bufs[err_r].decode("utf-8", "replace"))
