"""The architecture table: every name, number and byte string tbx knows about an architecture.

Nothing else in tbx knows aliases; everything asks :func:`resolve`.
"""

from __future__ import annotations

import os

from .errors import TbxError


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


class Arch:
    """One architecture. A plain class, not a dataclass: importing dataclasses costs ~10 ms,
    which every fast path (``tbx run --arch``) would pay. One instance per arch, in ARCHES."""

    __slots__ = ("name", "aliases", "oci_arch", "oci_variant", "e_machine", "elf_class", "endian", "qemu",
                 "magic", "mask")

    def __init__(self, name: str, aliases: tuple[str, ...], oci_arch: str, oci_variant: str | None,
                 e_machine: int, elf_class: int, endian: str, qemu: str, magic: bytes, mask: bytes) -> None:
        self.name = name                # canonical name, as `uname -m` prints it (armv7 for armv7l)
        self.aliases = aliases          # other spellings users type; matched case-insensitively
        self.oci_arch = oci_arch        # OCI / Go GOARCH name, used in image platforms and tag suffixes
        self.oci_variant = oci_variant  # OCI platform variant, when the platform has one
        self.e_machine = e_machine      # ELF header e_machine
        self.elf_class = elf_class      # 32 or 64
        self.endian = endian            # "little" or "big"
        self.qemu = qemu                # qemu user-mode name: qemu-<qemu>-static
        self.magic = magic              # binfmt_misc magic (QEMU's qemu-binfmt-conf.sh values)
        self.mask = mask

    def __setattr__(self, key, value):
        if hasattr(self, key):
            raise AttributeError(f"Arch.{key} is read-only")
        object.__setattr__(self, key, value)

    def __eq__(self, other) -> bool:
        return isinstance(other, Arch) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Arch({self.name!r})"

    @property
    def qemu_binary(self) -> str:
        return f"qemu-{self.qemu}-static"

    @property
    def binfmt_name(self) -> str:
        return f"qemu-{self.qemu}"

    @property
    def platform(self) -> str:
        p = f"linux/{self.oci_arch}"
        return f"{p}/{self.oci_variant}" if self.oci_variant else p

    @property
    def all_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.name, self.oci_arch, *self.aliases)))

    def __str__(self) -> str:
        return self.name


# Magic/mask: the 20 first bytes of an ELF executable header, as QEMU registers them.
_MASK_STD = "ff ff ff ff ff fe fe 00 ff ff ff ff ff ff ff ff fe ff ff ff"
_MASK_STRICT = "ff ff ff ff ff ff ff 00 ff ff ff ff ff ff ff ff fe ff ff ff"

ARCHES: tuple[Arch, ...] = (
    Arch("x86_64", ("amd64", "x86-64", "x64", "x86_64-v2"), "amd64", None, 62, 64, "little", "x86_64",
         _hex("7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00 02 00 3e 00"), _hex(_MASK_STD)),
    Arch("aarch64", ("arm64", "arm64v8", "armv8", "aarch64_le"), "arm64", "v8", 183, 64, "little", "aarch64",
         _hex("7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00 02 00 b7 00"), _hex(_MASK_STRICT)),
    Arch("armv7", ("arm", "armhf", "armv7l", "armv7hl", "arm32v7", "armel"), "arm", "v7", 40, 32, "little", "arm",
         _hex("7f 45 4c 46 01 01 01 00 00 00 00 00 00 00 00 00 02 00 28 00"), _hex(_MASK_STRICT)),
    Arch("i386", ("386", "i686", "i586", "i486", "x86", "ia32"), "386", None, 3, 32, "little", "i386",
         _hex("7f 45 4c 46 01 01 01 00 00 00 00 00 00 00 00 00 02 00 03 00"), _hex(_MASK_STD)),
    Arch("ppc64le", ("ppc64el", "powerpc64le", "ppc64-le"), "ppc64le", None, 21, 64, "little", "ppc64le",
         _hex("7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00 02 00 15 00"),
         _hex("ff ff ff ff ff ff ff fc ff ff ff ff ff ff ff ff fe ff ff 00")),
    Arch("s390x", ("s390", "systemz", "ibmz"), "s390x", None, 22, 64, "big", "s390x",
         _hex("7f 45 4c 46 02 02 01 00 00 00 00 00 00 00 00 00 00 02 00 16"),
         _hex("ff ff ff ff ff ff ff fc ff ff ff ff ff ff ff ff ff fe ff ff")),
    Arch("riscv64", ("riscv", "rv64", "rv64gc", "riscv64gc"), "riscv64", None, 243, 64, "little", "riscv64",
         _hex("7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00 02 00 f3 00"), _hex(_MASK_STRICT)),
)

_BY_NAME: dict[str, Arch] = {}
for _a in ARCHES:
    for _n in _a.all_names:
        assert _n.lower() not in _BY_NAME, f"alias {_n} used twice"
        _BY_NAME[_n.lower()] = _a

# What a host of a given architecture runs without emulation besides itself.
COMPAT: dict[str, tuple[str, ...]] = {"x86_64": ("i386",), "aarch64": ("armv7",)}


def supported_summary() -> str:
    """One line naming every architecture and its main alias, for error messages."""
    parts = []
    for a in sorted(ARCHES, key=lambda a: a.name):
        extra = a.oci_arch if a.oci_arch != a.name else (a.aliases[0] if a.aliases else "")
        parts.append(f"{a.name} ({extra})" if extra and extra != a.name else a.name)
    return ", ".join(parts)


# The options that name an architecture, everywhere: podman's --platform takes the same values.
ARCH_FLAGS = ("--arch", "--platform")
# OCI variants each arch accepts in a platform string (linux/arm64/v8); any other contradicts it.
VARIANTS: dict[str, tuple[str, ...]] = {"aarch64": ("v8",), "armv7": ("v7",)}


def lookup(name: str) -> Arch | None:
    """Any spelling of an architecture, or a platform string (``linux/arm64/v8``); None if unknown."""
    if not name:
        return None
    if "/" in name:
        try:
            return _platform(name)
        except TbxError:
            return None
    return _BY_NAME.get(name.strip().lower())


def _platform(text: str) -> Arch:
    """``OS/ARCH[/VARIANT]`` as podman's --platform takes it: OS must be linux, the variant must
    be the one the arch has (arm64/v8, arm/v7)."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise TbxError(f"{text!r} is not a platform", details="A platform is OS/ARCH[/VARIANT], e.g. linux/arm64/v8",
                       fix="Use e.g. --platform linux/arm64, or --arch aarch64")
    os_name, arch_name = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    if os_name != "linux":
        raise TbxError(f"platform {text!r} is for {os_name}: tbx runs Linux containers only",
                       fix=f"Use linux/{arch_name}")
    a = _BY_NAME.get(arch_name)
    if a is None:
        raise TbxError(f"architecture {arch_name!r} (in platform {text!r}) is not supported",
                       details=f"Supported: {supported_summary()}", fix="Use e.g. --platform linux/arm64")
    if variant is not None and variant not in VARIANTS.get(a.name, ()):
        known = VARIANTS.get(a.name)
        raise TbxError(f"platform {text!r}: variant {variant} contradicts {a.name}",
                       details=(f"{a.name} is {a.platform}" if known else f"{a.name} has no variants in tbx"),
                       fix=f"Use --platform {a.platform}")
    return a


def resolve(name: str) -> Arch:
    """Resolve any spelling of an architecture or a platform string; a clear TbxError for an
    unknown one."""
    if name and "/" in name:
        return _platform(name)
    arch = lookup(name or "")
    if arch is None:
        shown = repr(name) if name else "an empty name"
        raise TbxError(
            f"architecture {shown} is not supported" if name else "architecture name is empty",
            details=f"Supported: {supported_summary()}",
            fix="Use one of the names above, e.g. --arch aarch64",
        )
    return arch


def by_e_machine(e_machine: int, elf_class: int | None = None) -> Arch | None:
    for a in ARCHES:
        if a.e_machine == e_machine and (elf_class is None or a.elf_class == elf_class):
            return a
    return None


def host(machine: str | None = None) -> Arch:
    """The host's architecture (from ``uname -m`` unless given)."""
    m = machine or os.uname().machine
    arch = lookup(m)
    if arch is None:
        raise TbxError(f"this host's architecture {m!r} is not one tbx knows",
                       details=f"Supported: {supported_summary()}")
    return arch


def mode(arch: Arch, host_arch: Arch | None = None) -> str:
    """'native', 'compat' (runs without emulation, e.g. i386 on x86_64) or 'emulated'."""
    h = host_arch or host()
    if arch == h:
        return "native"
    if arch.name in COMPAT.get(h.name, ()):
        return "compat"
    return "emulated"


def needs_emulation(arch: Arch, host_arch: Arch | None = None) -> bool:
    return mode(arch, host_arch) == "emulated"
