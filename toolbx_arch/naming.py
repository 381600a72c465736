"""Image references, arch-suffixed local names, container names and labels. Pure functions.

Rules:
- A foreign image is stored locally as the same repository with the OCI arch appended to the
  tag: ``reg.example.org/fedora-toolbox:44`` for arm64 -> ``…/fedora-toolbox:44-arm64``; no tag
  means ``latest``. An arch suffix already on the tag (any alias of that arch) is replaced by the
  canonical one, never doubled (``44-aarch64`` -> ``44-arm64``).
- A digest reference (``repo@sha256:HEX``) becomes the tag ``sha256-<first 12 hex>-<arch>``.
- Tags stay within the OCI grammar and 128 characters: an over-long tag is shortened and made
  unique with 8 hex of its SHA-256 before the suffix.
- The host's own architecture gets no suffix anywhere.
- Default container name: the repository's last component, ``-``, the local tag.
"""

from __future__ import annotations

import re

from . import arch as archmod
from .errors import TbxError

LABEL_MANAGED = "io.github.tbx.managed"
LABEL_ARCH = "io.github.tbx.arch"
LABEL_OCI_ARCH = "io.github.tbx.oci-arch"
LABEL_SOURCE = "io.github.tbx.source"     # the remote reference the image came from
LABEL_IMAGE = "io.github.tbx.image"       # the local (arch-suffixed) image name
LABEL_CREATE_ID = "io.github.tbx.create-id"
LABEL_EMULATOR = "io.github.tbx.emulator"  # the pulled emulator's name, or the emulator's host path
LABEL_EMULATOR_PATH = "io.github.tbx.emulator-path"  # the emulator binary on the host
LABEL_BINFMT_MODE = "io.github.tbx.binfmt-mode"  # private, or host (the host's entry runs it)
LABEL_HOST_ENTRY = "io.github.tbx.host-entry"    # host mode: the host's binfmt_misc entry
LABEL_CPU = "io.github.tbx.cpu"           # QEMU_CPU of every emulated process (tbx create --cpu)
LABEL_VOLUMES = "io.github.tbx.volumes"   # tbx create --volume: JSON [{"host", "container", "mode"}]
MANAGED_FILTER = f"{LABEL_MANAGED}=true"   # podman label filter for tbx containers

TAG_MAX = 128
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_DOMAIN_RE = re.compile(_DOMAIN)
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


class Reference:
    """``[domain/]path[:tag][@digest]``. A plain class: importing dataclasses costs ~10 ms, which
    rm and list would pay on every call."""

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str | None, path: str, tag: str | None = None, digest: str | None = None) -> None:
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    def _key(self) -> tuple:
        return (self.domain, self.path, self.tag, self.digest)

    def __eq__(self, other) -> bool:
        return isinstance(other, Reference) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Reference{self._key()!r}"

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def basename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_reference(ref: str) -> Reference:
    """Parse ``[domain[:port]/]path[:tag][@digest]``; a TbxError explains a malformed one."""
    text = ref.strip()
    if not text or any(c.isspace() for c in text):
        raise _bad_ref(ref, "it is empty or contains white space")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise _bad_ref(ref, f"{digest!r} is not a digest (algorithm:hex)")
        algo, hexpart = digest.split(":", 1)
        want = {"sha256": 64, "sha384": 96, "sha512": 128}.get(algo)
        if want and len(hexpart) != want:
            raise _bad_ref(ref, f"a {algo} digest has {want} hex digits, not {len(hexpart)}")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise _bad_ref(ref, f"tag {tag!r} is not valid (letters, digits, _ . -, at most 128)")
    domain = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN_RE.fullmatch(first):
            raise _bad_ref(ref, f"{first!r} is not a registry host")
        domain, rest = first, remainder
    if not _PATH_RE.fullmatch(rest):
        raise _bad_ref(ref, "repository names are lower-case letters, digits and separators . _ - /")
    return Reference(domain, rest, tag, digest)


def _bad_ref(ref: str, why: str) -> TbxError:
    return TbxError(f"{ref!r} is not a valid image reference", details=why,
                    fix="Use a reference like registry.example.org/fedora-toolbox:44")


def normalize(ref: str) -> Reference:
    """Fully qualify a reference the way skopeo and containers-storage do (docker.io/library); with
    both a tag and a digest, the digest alone."""
    r = parse_reference(ref)
    if r.digest and r.tag:  # as podman does: the digest decides (skopeo refuses both)
        r = Reference(r.domain, r.path, None, r.digest)
    if r.domain is None:
        path = r.path if "/" in r.path else f"library/{r.path}"
        return Reference("docker.io", path, r.tag or (None if r.digest else "latest"), r.digest)
    if r.tag is None and r.digest is None:
        return Reference(r.domain, r.path, "latest", None)
    return r


def split_arch_suffix(tag: str) -> tuple[str, archmod.Arch | None]:
    """``44-aarch64`` -> ("44", aarch64); a tag without an arch suffix -> (tag, None).

    The longest alias wins (``x86-64`` over ``64``); a bare arch name as the whole tag
    (``arm64``) is a suffix of the empty base.
    """
    best: tuple[str, archmod.Arch] | None = None
    for a in archmod.ARCHES:
        for n in a.all_names:
            for sep in ("-", "_"):
                suffix = f"{sep}{n}"
                if tag.lower().endswith(suffix.lower()) and len(tag) > len(suffix):
                    if best is None or len(suffix) > len(tag) - len(best[0]):
                        best = (tag[: -len(suffix)], a)
    return best if best else (tag, None)


def _fit_tag(base: str, suffix: str) -> str:
    """base + suffix within TAG_MAX, unique for distinct bases; always a valid OCI tag."""
    if not base or not re.match(r"\w", base[0]):
        base = f"t{base}"
    if len(base) + len(suffix) <= TAG_MAX:
        return base + suffix
    import hashlib

    h = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = TAG_MAX - len(suffix) - len(h) - 1
    return f"{base[:keep]}-{h}{suffix}"


def local_tag(r: Reference, a: archmod.Arch, host_arch: archmod.Arch) -> str:
    if r.digest:
        algo, hexpart = r.digest.split(":", 1)
        base = f"{algo}-{hexpart[:12].lower()}"
    else:
        base = r.tag or "latest"
        stripped, found = split_arch_suffix(base)
        if found == a:
            base = stripped
    if a == host_arch:
        return base
    return _fit_tag(base, f"-{a.oci_arch}")


def local_image_name(ref: str, a: archmod.Arch, host_arch: archmod.Arch | None = None) -> str:
    """Where tbx stores ``ref`` for architecture ``a`` in containers-storage."""
    h = host_arch or archmod.host()
    r = normalize(ref)
    if a == h and not r.digest:
        return str(r)
    return str(r.with_tag(local_tag(r, a, h)))


def container_name(image: str) -> str:
    """Default container name for a local image name: basename-tag (toolbox's rule)."""
    r = parse_reference(image)
    tag = r.tag or "latest"
    name = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"{r.basename}-{tag}")
    return name


def validate_container_name(name: str | None) -> str:
    """A container name as podman accepts it; empty, white space, or a leading '-' is an error."""
    if not name or not name.strip():
        raise TbxError("the container name is empty", fix="Give a name like my-arm64-box, or leave it out for the default")
    if name.startswith("-"):
        raise TbxError(f"container name {name!r} starts with '-'",
                       fix="Container names start with a letter or digit; an argument that starts with '-' "
                           "goes after '--' (tbx rm -- NAME)")
    if not _NAME_RE.fullmatch(name) or len(name) > 253:
        raise TbxError(f"container name {name!r} is not valid",
                       fix="Names start with a letter or digit and contain only letters, digits, _ . - "
                           "(e.g. my-arm64-box)")
    return name


def validate_image_name(name: str | None) -> str:
    """A local image name or ID given to rmi: empty or '-'-led is an error before podman sees it."""
    if not name or not name.strip():
        raise TbxError("the image name is empty", fix="Name an image: tbx rmi IMAGE (see tbx list --images)")
    if name.startswith("-"):
        raise TbxError(f"image name {name!r} starts with '-'", fix="See the names with: tbx list --images")
    if any(c.isspace() for c in name):
        raise TbxError(f"image name {name!r} contains white space", fix="See the names with: tbx list --images")
    return name


def names_or_all(names: list[str], all_: bool, *, what: str, cmd: str, placeholder: str, check) -> None:
    """rm/rmi arguments: some names, each valid (``check``), or --all alone, as podman takes them
    (--all with names is a mistake, not "all")."""
    if not names and not all_:
        raise TbxError(f"tbx {cmd} needs the name of a {what} to remove, or --all",
                       fix=f"tbx {cmd} {placeholder}…, or tbx {cmd} --all (see tbx list)")
    if names and all_:
        raise TbxError(f"--all removes every tbx {what}; it cannot be combined with names ({' '.join(names)})",
                       fix=f"tbx {cmd} {' '.join(names)}, or tbx {cmd} --all")
    for n in names:
        check(n)


def arch_by_container(rows: list[dict]) -> dict[str, str]:
    """{container name: tbx arch label} from ``podman ps --format json`` rows (the catalog)."""
    return {(r.get("Names") or ["?"])[0]: (r.get("Labels") or {}).get(LABEL_ARCH, "?") for r in rows}
