"""``tbx run``: one command in one container, its exit code passed through (several arches: multirun)."""

from __future__ import annotations

import sys

from ..errors import TbxError


def _configured(arch: str) -> bool:
    """Does the configuration map this arch to a podman connection?"""
    from ..arch import lookup
    from ..config import load

    a = lookup(arch)
    return a is not None and a.name in load().connections


def run(command: list[str], *, container: str | None, arch: str | None, image: str | None, distro: str | None,
        release: str | None, create_missing: bool, jobs: int | None, json_out: bool, tls_verify: bool | None = None,
        connections: list[str] = (), local: bool = False, fallback_local: bool = False, sync: bool = True,
        sync_deletions: bool = False) -> int:
    if arch and "," in arch:
        from .multirun import multirun

        return multirun(command, arches=arch, image=image, create_missing=create_missing, jobs=jobs,
                        json_out=json_out, tls_verify=tls_verify, connections=connections, local=local,
                        fallback_local=fallback_local, sync=sync, sync_deletions=sync_deletions)
    if connections and (container or not arch):
        raise TbxError("--connection needs --arch (and no --container): it says where an arch runs",
                       fix="Add --arch ARCH, e.g. tbx run --arch aarch64 --connection aarch64=NODE CMD")
    # (--local with --connection reaches nodes.mapping, which refuses the pair)
    if arch and not container and (connections or not local and _configured(arch)):
        from .noderun import single_remote

        rc = single_remote(command, arch=arch, image=image, connections=list(connections), local=local,
                           fallback_local=fallback_local, sync=sync, tls_verify=tls_verify,
                           sync_deletions=sync_deletions)
        if rc is not None:
            return rc
    from .. import containers, execspec, runner
    from ._lookup import lookup

    info = lookup(name=container, arch=arch, distro=distro, release=release, image=image)
    containers.ensure_running(info)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    argv = containers.exec_argv(info, command, user=execspec.invoking_user(), interactive=True, tty=tty, notice=True)
    runner.execvp(argv)

