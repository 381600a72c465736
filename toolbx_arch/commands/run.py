"""``tbx run``: one command in one container, its exit code passed through (several arches: multirun)."""

from __future__ import annotations

import sys

from .. import containers, execspec, runner
from ._lookup import lookup


def run(command: list[str], *, container: str | None, arch: str | None, image: str | None, distro: str | None,
        release: str | None, create_missing: bool, jobs: int | None, json_out: bool, tls_verify: bool = True) -> int:
    if arch and "," in arch:
        from .multirun import multirun

        return multirun(command, arches=arch, image=image, create_missing=create_missing, jobs=jobs,
                        json_out=json_out, tls_verify=tls_verify)
    info = lookup(name=container, arch=arch, distro=distro, release=release, image=image)
    containers.ensure_running(info)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    argv = containers.exec_argv(info, command, user=execspec.invoking_user(), interactive=True, tty=tty)
    runner.execvp(argv)

