"""Which container a command means: by name, by --distro/--release (+ --arch), or by --arch alone."""

from __future__ import annotations

from .. import containers
from ..config import load
from ..hostinfo import os_release
from ..resolve import target


def lookup(*, name: str | None, arch: str | None, distro: str | None = None, release: str | None = None,
           image: str | None = None) -> containers.Info:
    """The container meant by a name, or by --distro/--release (+ --arch), or by --arch alone."""
    if name is None and (distro or release):
        t = target(image=None, distro=distro, release=release, arch=arch, cfg=load(), host_release=os_release)
        return containers.find(t.container, t.arch.name)
    return containers.find(name, arch, image=image)
