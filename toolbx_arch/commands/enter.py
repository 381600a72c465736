"""``tbx enter``: start a container when needed and hand the terminal to a login shell in it; an
arch mapped to a podman connection gets its shell on that machine (``noderun.enter_remote``)."""

from __future__ import annotations

from .. import containers, execspec, runner
from ..errors import TbxError
from ._lookup import lookup


def enter(*, name: str | None, arch: str | None, distro: str | None, release: str | None, image: str | None = None,
          connections: list[str] = (), local: bool = False, sync: bool = True, sync_deletions: bool = False) -> int:
    if connections and (name or not arch):
        raise TbxError("--connection needs --arch (and no container name): it says where an arch runs",
                       fix="tbx enter --arch ARCH --connection ARCH=NODE")
    if local and connections:
        raise TbxError("--local and --connection contradict each other", fix="Give one of them")
    if arch and not name and not local:
        from .run import _configured

        if connections or _configured(arch):
            if not containers.stdin_is_tty():
                raise TbxError("tbx enter needs a terminal (standard input is not one)",
                               fix=f"Run a command instead: tbx run --arch {arch} COMMAND")
            from .noderun import enter_remote

            rc = enter_remote(arch=arch, image=image, connections=list(connections), sync=sync,
                              sync_deletions=sync_deletions)
            if rc is not None:
                return rc
    if image:
        raise TbxError("--image chooses the container on a connection's machine; here, name the container",
                       fix="tbx enter NAME (see tbx list), or tbx create --image REF first")
    info = lookup(name=name, arch=arch, distro=distro, release=release)
    if not containers.stdin_is_tty():
        raise TbxError("tbx enter needs a terminal (standard input is not one)",
                       fix=f"Run a command instead: tbx run -c {info.name} COMMAND")
    containers.ensure_running(info)
    user = execspec.invoking_user()
    shell = [*execspec.LOGIN_SHELL, user.shell]
    argv = containers.exec_argv(info, shell, user=user, interactive=True, tty=True, notice=True)
    runner.execvp(argv)
