"""How a container runs the host's own programs: the host's dynamic loader, its library
directories and its shell, all seen through /run/host (computed on the host with pyelftools).

The init script is started as ``LOADER --library-path LIBS SHELL /usr/libexec/tbx/tbx-init.sh …``
so nothing of the container's (possibly foreign) architecture runs before the emulator is
registered. Symlinks are resolved on the host: an absolute link would resolve inside the
container's root, not the host's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import TbxError

HOST_PREFIX = "/run/host"
INIT_PATH = "/usr/libexec/tbx/tbx-init.sh"
STATUS_DIR = "/run/tbx"
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
        return ["--library-path", self.library_path, self.in_container(self.shell), INIT_PATH,
                "--loader", self.in_container(self.loader), "--library-path", self.library_path, *init_args]


def discover() -> HostRuntime:
    from . import elf

    shell = next((os.path.realpath(s) for s in SHELLS if os.access(s, os.X_OK)), None)
    if shell is None:
        raise TbxError("no POSIX shell found on the host (looked for dash, sh, bash in /usr/bin and /bin)")
    info = elf.read(shell)
    if info.interpreter is None:
        # A static shell needs no loader; run it "through" itself is not possible: use it directly.
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


def init_script_text() -> str:
    from importlib.resources import files

    return files("toolbx_arch").joinpath("init/tbx-init.sh").read_text()
