"""How a container runs the host's own programs: the host's dynamic loader, its library
directories and its shell, all seen through /run/host (computed on the host with pyelftools).

The init script is started as ``LOADER --library-path LIBS SHELL -c SCRIPT tbx-init …`` so
nothing of the container's (possibly foreign) architecture runs before the emulator is
registered, and the script is part of the container's configuration (nothing inside the
container can change it). Symlinks are resolved on the host: an absolute link would resolve
inside the container's root, not the host's.

``/run/host`` holds only what the init needs, read-only: the host directories that contain the
loader, the libraries, the shell and the few host programs the init runs, and the emulator's file
alone when no such directory holds it (``covered``). Each is a non-recursive bind (nothing mounted below it comes along) with private propagation (a later
mount on the host does not appear), and the container has no CAP_SYS_ADMIN to remount it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import TbxError

HOST_PREFIX = "/run/host"
STATUS_DIR = "/run/tbx"
HOST_PROGRAM_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")  # where the init looks for host programs
SHELLS = ("/usr/bin/dash", "/bin/dash", "/usr/bin/sh", "/bin/sh", "/usr/bin/bash", "/bin/bash")
LIB_DIRS = ("/usr/lib/{triplet}", "/lib/{triplet}", "/usr/lib64", "/lib64", "/usr/lib", "/lib")


@dataclass(frozen=True)
class HostRuntime:
    loader: str          # host path of the dynamic loader (symlinks resolved)
    lib_dirs: tuple[str, ...]
    shell: str           # host path of the POSIX shell (resolved)

    def in_container(self, path: str) -> str:
        return HOST_PREFIX + path

    @property
    def library_path(self) -> str:
        return ":".join(self.in_container(d) for d in self.lib_dirs)

    def entrypoint(self) -> list[str]:
        return [self.in_container(self.loader)]

    def command(self, init_args: list[str]) -> list[str]:
        return ["--library-path", self.library_path, self.in_container(self.shell), "-c", init_script_text(),
                "tbx-init", "--loader", self.in_container(self.loader), "--library-path", self.library_path,
                *init_args]

    def binds(self, mountinfo: str | None = None) -> list[str]:
        """Host directories to bind (read-only, non-recursive) under /run/host: the loader's, the
        libraries', the shell's and the host programs'."""
        needed = [self.loader, *self.lib_dirs, self.shell, *HOST_PROGRAM_DIRS]
        return bind_sources(needed, mount_points(mountinfo))


def covered(path: str, binds: list[str], mountinfo: str | None = None) -> bool:
    """Whether ``path`` (resolved) is seen through one of the non-recursive ``binds``: below one,
    with nothing mounted between that directory and the file."""
    mounts = mount_points(mountinfo)
    d = os.path.dirname(path)
    for b in binds:
        if d == b or d.startswith(b + "/"):
            return not any(m.startswith(b + "/") and (d + "/").startswith(m + "/") for m in mounts)
    return False


def discover() -> HostRuntime:
    from . import elf

    shell = next((os.path.realpath(s) for s in SHELLS if os.access(s, os.X_OK)), None)
    if shell is None:
        raise TbxError("no POSIX shell found on the host (looked for dash, sh, bash in /usr/bin and /bin)")
    info = elf.read(shell)
    if info.interpreter is None:
        # The init is started through the host's loader; a static shell has none to start it with.
        raise TbxError(f"the host shell {shell} is statically linked; tbx expects a dynamically linked host shell",
                       details="Please report this host layout.")
    loader = os.path.realpath(info.interpreter)
    triplet = os.path.basename(os.path.dirname(loader))
    dirs = [os.path.dirname(loader)]
    for d in LIB_DIRS:
        p = d.format(triplet=triplet)
        if os.path.isdir(p):
            dirs.append(os.path.realpath(p))
    return HostRuntime(loader=loader, lib_dirs=tuple(dict.fromkeys(dirs)), shell=shell)


def mount_points(mountinfo: str | None = None) -> list[str]:
    """Mount points of this process's mount namespace (from /proc/self/mountinfo)."""
    if mountinfo is None:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            mountinfo = f.read()
    out = []
    for row in mountinfo.splitlines():
        fields = row.split()
        if len(fields) > 4:
            out.append(fields[4].replace("\\040", " "))
    return out


def bind_sources(paths, mounts: list[str]) -> list[str]:
    """For each existing host path, the directory to bind for it: its top-level directory (/usr)
    when nothing is mounted below that, else the deepest directory holding it with nothing mounted
    below (a non-recursive bind of a directory with mounts below it is refused in a user
    namespace). Sorted, without duplicates or directories already covered by another."""
    chosen: set[str] = set()
    for p in paths:
        if not os.path.lexists(p):
            continue
        real = os.path.realpath(p)
        d = real if os.path.isdir(real) else os.path.dirname(real)
        parts = d.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            cand = "/" + "/".join(parts[:depth])
            if cand == "/":
                continue
            if not any(m.startswith(cand + "/") for m in mounts):
                chosen.add(cand)
                break
        else:
            raise TbxError(f"cannot share {real} with containers read-only: something is mounted below {d}")
    return sorted(c for c in chosen if not any(c.startswith(o + "/") for o in chosen))


def init_script_text() -> str:
    # Read beside this module (importlib.resources costs ~5 ms of imports; tbx is never zipped).
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "init", "tbx-init.sh")) as f:
        return f.read()
