"""The emulator's registration in a container's own binfmt_misc instance, made from the host.

A tbx container has no CAP_SYS_ADMIN, so nothing inside it, root included, can mount or remount
anything (``/run/host`` stays read-only). The registration is therefore made by tbx itself:
a forked child joins the container's user and mount namespaces (``setns``), mounts binfmt_misc
at ``/proc/sys/fs/binfmt_misc`` there, checks that the instance is a fresh, private one (only
``register`` and ``status``), and writes the line computed by ``binfmt.registration_line``.
No program of the container runs, no library of it is loaded, and no file of it is read, apart
from the binfmt_misc instance itself. The container's init waits for the entry to appear.

Refused: a container in the host's own user namespace (its binfmt_misc is the host's), and an
instance that holds anything else. Registering again in a running container is a no-op when
the instance holds exactly this entry.
"""

from __future__ import annotations

import os

from . import runner
from .errors import TbxError

BM = "/proc/sys/fs/binfmt_misc"
_FULL_MAP = ("0", "0", "4294967295")


def entry_name(line: str) -> str:
    return line[1:].split(":", 1)[0]


def interpreter(line: str) -> str:
    return line.rsplit(":", 2)[1]


def _binfmt_mounted(pid: int) -> bool:
    """Whether binfmt_misc is mounted at /proc/sys/fs/binfmt_misc in the process's mount namespace."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
            for row in f:
                left, _, right = row.partition(" - ")
                fields = left.split()
                if len(fields) > 4 and fields[4] == BM and right.split(" ", 1)[0] == "binfmt_misc":
                    return True
    except OSError as e:
        raise TbxError(f"cannot read the mounts of the container's init (pid {pid}): {e.strerror}") from None
    return False


def _own_user_namespace(pid: int) -> None:
    try:
        theirs = os.stat(f"/proc/{pid}/ns/user")
        with open(f"/proc/{pid}/uid_map", encoding="ascii") as f:
            rows = [tuple(r.split()) for r in f]
    except OSError as e:
        raise TbxError(f"cannot inspect the user namespace of the container's init (pid {pid}): {e.strerror}") from None
    ours = os.stat("/proc/self/ns/user")
    if (theirs.st_ino, theirs.st_dev) == (ours.st_ino, ours.st_dev) or _FULL_MAP in rows:
        raise TbxError("this container shares the host's user namespace: its binfmt_misc would be the host's; "
                       "refusing to register the emulator",
                       fix="Create the container with tbx, which gives it a user namespace of its own")


def register(pid: int, line: str) -> str:
    """Register ``line`` in the private binfmt_misc instance of the container whose init is
    ``pid``; returns what was done. TbxError when it cannot or must not be done."""
    _own_user_namespace(pid)
    name = entry_name(line)
    interp = interpreter(line)
    mounted = _binfmt_mounted(pid)
    data = line.encode()

    def child(libc):  # runs inside the container's namespaces: system calls only
        import ctypes  # already imported by runner: no file is read

        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        if not mounted:
            if libc.mount(b"binfmt_misc", BM.encode(), b"binfmt_misc", 0, None) != 0:
                err = ctypes.get_errno()
                return False, (f"cannot mount binfmt_misc in the container's user namespace ({os.strerror(err)}); "
                               "Linux >= 6.7 is needed")
        entries = sorted(os.listdir(BM))
        if name in entries:
            if entries != sorted(["register", "status", name]):
                return False, f"the binfmt_misc instance is not private (it has {', '.join(entries)}); refusing"
            fd = os.open(f"{BM}/{name}", os.O_RDONLY)
            try:
                current = os.read(fd, 4096).decode("utf-8", "replace")
            finally:
                os.close(fd)
            if "enabled" in current.split("\n", 1)[0] and f"interpreter {interp}\n" in current:
                return True, "already registered"
            return False, f"{name} is registered in this container with another interpreter; restart the container"
        if entries != ["register", "status"]:
            return False, (f"the binfmt_misc instance is not fresh (it has {', '.join(e for e in entries if e not in ('register', 'status'))}): "
                           "it is not this container's private one; refusing to register")
        fd = os.open(f"{BM}/register", os.O_WRONLY)
        try:
            os.write(fd, data)
        except OSError as e:
            return False, f"registering {interp} failed: {e.strerror}"
        finally:
            os.close(fd)
        if name not in os.listdir(BM):
            return False, f"registration {name} did not appear"
        return True, "registered"

    return runner.in_namespaces(pid, ("user", "mnt"), child, what=f"registering {name} in the container")
