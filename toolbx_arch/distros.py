"""Supported toolbox distribution images: the one place that lists them.

Used to pick a default image (``--distro/--release``) and to decide whether an arch-like suffix
in an image tag (``fedora-toolbox:44-aarch64``) names an architecture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TbxError


@dataclass(frozen=True)
class Distro:
    name: str
    image: str              # repository, with {release} / {major} placeholders where needed
    release_pattern: str    # regular expression a release must match
    examples: tuple[str, ...]
    host_ids: tuple[str, ...]  # /etc/os-release ID values that mean "this distro"
    rolling: str | None = None  # the release to use when the host has no VERSION_ID (a rolling release)

    def image_for(self, release: str) -> str:
        if not re.fullmatch(self.release_pattern, release):
            raise TbxError(
                f"release {release!r} is not valid for {self.name}",
                details=f"{self.name} releases look like: {', '.join(self.examples)}",
                fix=f"tbx create --distro {self.name} --release {self.examples[0]}",
            )
        major = release.split(".")[0]
        repo = self.image.format(major=major)
        return f"{repo}:{release}"

    @property
    def basename(self) -> str:
        return self.image.rsplit("/", 1)[-1]


DISTROS: tuple[Distro, ...] = (
    Distro("fedora", "registry.fedoraproject.org/fedora-toolbox", r"[1-9][0-9]*|rawhide",
           ("44", "43", "rawhide"), ("fedora",)),
    Distro("rhel", "registry.access.redhat.com/ubi{major}/toolbox", r"[89]\.[0-9]+|10\.[0-9]+",
           ("9.6", "10.0", "8.10"), ("rhel",)),
    Distro("arch", "quay.io/toolbx/arch-toolbox", r"latest", ("latest",), ("arch",), rolling="latest"),
    Distro("ubuntu", "quay.io/toolbx/ubuntu-toolbox", r"[0-9]{2}\.(04|10)", ("24.04", "22.04"), ("ubuntu",)),
    Distro("debian", "quay.io/toolbx-images/debian-toolbox", r"[0-9]{2}|testing|unstable",
           ("12", "13", "testing"), ("debian",), rolling="testing"),
)

SUPPORTED_BASENAMES = frozenset(d.basename for d in DISTROS)


def get(name: str) -> Distro:
    for d in DISTROS:
        if d.name == name.lower():
            return d
    raise TbxError(f"distribution {name!r} is not supported",
                   details="Supported: " + ", ".join(d.name for d in DISTROS),
                   fix="Use --distro with one of those, or give an image with --image")


def for_host_id(os_id: str) -> Distro | None:
    for d in DISTROS:
        if os_id in d.host_ids:
            return d
    return None


def is_supported_image(repository: str) -> bool:
    """Whether a repository path is a supported toolbox distro image (by its last component)."""
    return repository.rsplit("/", 1)[-1] in SUPPORTED_BASENAMES
