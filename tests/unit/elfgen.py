"""Build tiny ELF executables for tests: a header, program headers, optionally PT_INTERP."""

from __future__ import annotations

import struct
from pathlib import Path


def qemu_text(target: str, version: str = "9.9.9") -> bytes:
    """What QEMU's user-mode emulators keep for ``--version`` (tbx reads it instead of running them)."""
    return (f"qemu-{target} version {version} (test)\n"
            "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n\0").encode()


def make_elf(path: Path, *, e_machine: int, bits: int = 64, little: bool = True,
             interp: str | None = None, mode: int = 0o755, qemu: str | bool | None = None) -> Path:
    """``qemu``: the QEMU target whose version text the file carries; by default the one its name
    says (``qemu-aarch64-static`` -> aarch64); False: none."""
    end = "<" if little else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    phnum = 2 if interp else 1
    phoff = ehsize
    interp_off = phoff + phnum * phentsize
    interp_bytes = (interp.encode() + b"\0") if interp else b""
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + b"\0" * 8
    if bits == 64:
        header = ident + struct.pack(end + "HHIQQQIHHHHHH", 2, e_machine, 1, 0x400000, phoff, 0, 0,
                                     ehsize, phentsize, phnum, 64, 0, 0)
    else:
        header = ident + struct.pack(end + "HHIIIIIHHHHHH", 2, e_machine, 1, 0x8048000, phoff, 0, 0,
                                     ehsize, phentsize, phnum, 40, 0, 0)
    phdrs = b""
    total = interp_off + len(interp_bytes)
    if interp:
        phdrs += _phdr(end, bits, 3, interp_off, len(interp_bytes))  # PT_INTERP
    phdrs += _phdr(end, bits, 1, 0, total)  # PT_LOAD
    path.parent.mkdir(parents=True, exist_ok=True)
    if qemu is None and path.name.startswith("qemu-"):
        qemu = path.name[len("qemu-"):].removesuffix("-static")
    path.write_bytes(header + phdrs + interp_bytes + (qemu_text(qemu) if qemu else b""))
    path.chmod(mode)
    return path


def _phdr(end: str, bits: int, p_type: int, off: int, size: int) -> bytes:
    if bits == 64:
        return struct.pack(end + "IIQQQQQQ", p_type, 5, off, 0x400000 + off, 0x400000 + off, size, size, 0x1000)
    return struct.pack(end + "IIIIIIII", p_type, off, 0x8048000 + off, 0x8048000 + off, size, size, 5, 0x1000)
