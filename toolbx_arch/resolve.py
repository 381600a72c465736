"""From what the user typed (--image, --distro/--release, --arch, a tag suffix, config) to one
(remote reference, architecture, local image name, default container name). Used by create,
enter, run and image commands alike, so all of them reach the same container.

- An arch suffix in the tag (``fedora-toolbox:44-aarch64``) names the architecture only for the
  supported toolbox distribution images; for any other image only when a local image of exactly
  that name really is of that architecture.
- ``--arch`` and a suffix that disagree is an error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import arch as archmod
from . import distros, naming
from .arch import Arch
from .config import Config
from .errors import TbxError


@dataclass(frozen=True)
class Target:
    ref: str
    arch: Arch
    local_image: str
    container: str


def image_for_distro(distro: str | None, release: str | None, cfg: Config,
                     host_release: dict[str, str] | None = None) -> str:
    """The toolbox image of ``distro``/``release``; either defaults to the host's, from its
    os-release fields ``host_release`` (passed in: this module reads nothing)."""
    rel = host_release or {}
    host_distro = distros.for_host_id(rel.get("ID", ""))
    d = distros.get(distro) if distro else host_distro
    if d is None:
        raise TbxError(f"this host's distribution ({rel.get('ID', 'unknown')}) has no toolbox image tbx knows",
                       fix="Pass --image REF, or --distro/--release (e.g. --distro fedora --release 44)")
    if release is None:
        if d is host_distro and rel.get("VERSION_ID"):
            release = rel["VERSION_ID"].split(".")[0] if d.name == "debian" else rel["VERSION_ID"]
        elif d.rolling:  # Arch, Debian testing/sid: no VERSION_ID; the rolling image
            release = d.rolling
        elif distro is None:
            raise TbxError(f"this host's {d.name} has no release number (os-release has no VERSION_ID), "
                           f"so tbx cannot tell which {d.name} toolbox image matches it",
                           fix=f"Pass --image REF, or --release (e.g. tbx create --release {d.examples[0]})")
        else:
            raise TbxError(f"--release is needed with --distro {d.name}",
                           fix=f"tbx create --distro {d.name} --release {d.examples[0]}")
    configured = cfg.image_for(d.name, release)
    return configured or d.image_for(release)


def arch_from_tag(ref: str) -> tuple[str, Arch | None]:
    """For supported distro images: (reference without the suffix, arch of the suffix)."""
    r = naming.parse_reference(ref)
    if not r.tag or r.digest or not distros.is_supported_image(r.path):
        return ref, None
    base, a = naming.split_arch_suffix(r.tag)
    if a is None or not base:
        return ref, None
    return str(naming.Reference(r.domain, r.path, base, None)), a


def target(*, image: str | None, distro: str | None, release: str | None, arch: str | None,
           cfg: Config, local_arch_of=None, host_release=None, qualify=None) -> Target:
    """Resolve; ``local_arch_of(name) -> oci arch | None`` looks at local storage,
    ``host_release() -> dict`` gives the host's os-release and ``qualify(ref) -> ref`` resolves a
    short name as podman does (all passed in by the commands)."""
    if image and (distro or release):
        raise TbxError("--image cannot be combined with --distro or --release",
                       fix="Give either --image REF, or --distro D --release R")
    asked = archmod.resolve(arch) if arch is not None else None
    if image is None:
        rel = host_release() if host_release is not None else {}
        image = image_for_distro(distro, release, cfg, rel) if (distro or release) else (
            cfg.default_image or image_for_distro(None, None, cfg, rel))
    naming.parse_reference(image)  # validates
    if qualify is not None:
        image = qualify(image)
    ref, suffix_arch = arch_from_tag(image)
    if suffix_arch is None:
        r = naming.parse_reference(image)
        if r.tag and local_arch_of is not None:
            _, s = naming.split_arch_suffix(r.tag)
            if s is not None and local_arch_of(image) == s.oci_arch:
                suffix_arch = s  # an unsupported image whose suffix matches its real arch
                if asked and asked != s:
                    raise _conflict(image, asked, s)
                return Target(image, s, str(naming.normalize(image)), naming.container_name(image))
    if suffix_arch is not None and asked is not None and asked != suffix_arch:
        raise _conflict(image, asked, suffix_arch)
    a = asked or suffix_arch or archmod.resolve(cfg.default_arch or archmod.host().name)
    local = naming.local_image_name(ref, a)
    return Target(str(naming.normalize(ref)), a, local, naming.container_name(local))


def _conflict(image: str, asked: Arch, suffix: Arch) -> TbxError:
    return TbxError(f"conflicting architectures: --arch {asked.name} but the tag of {image} says {suffix.name}",
                    fix=f"Drop --arch, or use the image without the -{suffix.oci_arch} suffix")
