"""``tbx enter``: start a container when needed and hand the terminal to a login shell in it."""

from __future__ import annotations

from .. import containers, execspec, runner
from ..errors import TbxError
from ._lookup import lookup


def enter(*, name: str | None, arch: str | None, distro: str | None, release: str | None) -> int:
    info = lookup(name=name, arch=arch, distro=distro, release=release)
    if not containers.stdin_is_tty():
        raise TbxError("tbx enter needs a terminal (standard input is not one)",
                       fix=f"Run a command instead: tbx run -c {info.name} COMMAND")
    containers.ensure_running(info)
    user = execspec.invoking_user()
    shell = [*execspec.LOGIN_SHELL, user.shell]
    argv = containers.exec_argv(info, shell, user=user, interactive=True, tty=True, notice=True)
    runner.execvp(argv)
