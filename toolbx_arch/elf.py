"""ELF facts with pyelftools: machine, class, static or dynamic, interpreter.

Decided once (measured, benchmarks/RESULTS.md "ELF reading"): pyelftools stays, with its own
e_machine table. Its import costs 35-55 ms and a read 1.3 ms, where struct would need no import
and 0.01 ms; the cache below answers for an unchanged emulator without importing it, so the cost
falls only on the first check after an emulator changes, and pyelftools' validation of a
malformed file is kept."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import TbxError


@dataclass(frozen=True)
class ElfInfo:
    path: str
    e_machine: int
    elf_class: int
    little_endian: bool
    interpreter: str | None  # PT_INTERP; None means statically linked

    @property
    def is_static(self) -> bool:
        return self.interpreter is None


def read(path: str | Path) -> ElfInfo:
    """Read an ELF file's header; TbxError if it is missing or not ELF. Answers for a file that
    has not changed (same device, inode, size, mtime and ctime) come from a small cache in the
    runtime directory, which spares every command that checks an emulator pyelftools' import."""
    p = str(path)
    ident = _identity(p)
    key = f"{p}\0{ident}" if ident else None
    cache = _load_cache() if key else {}
    hit = cache.get(key) if key else None
    if isinstance(hit, list) and len(hit) == 4:
        return ElfInfo(p, int(hit[0]), int(hit[1]), bool(hit[2]), hit[3])
    info = _read(p)
    if key:
        cache = {k: v for k, v in cache.items() if not k.startswith(p + "\0")}
        cache[key] = [info.e_machine, info.elf_class, info.little_endian, info.interpreter]
        _store_cache(cache)
    return info


def _identity(path: str) -> str | None:
    """What makes a cached answer about a file still true: same device, inode, size and times."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _cache_path() -> str | None:
    from .status import cache_path

    return cache_path("elf-cache.json")


def _load_cache() -> dict:
    from .status import load_cache

    return load_cache(_cache_path())


def _store_cache(cache: dict) -> None:
    from .status import store_cache

    store_cache(_cache_path(), cache)


def _read(p: str) -> ElfInfo:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.enums import ENUM_E_MACHINE

    try:
        with open(p, "rb") as f:
            if f.read(4) != b"\x7fELF":
                raise TbxError(f"{p} is not an ELF executable")
            f.seek(0)
            elf = ELFFile(f)
            interp = None
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.get_interp_name()
                    break
            machine = elf["e_machine"]
            e_machine = machine if isinstance(machine, int) else ENUM_E_MACHINE.get(machine, -1)
            return ElfInfo(p, e_machine, elf.elfclass, elf.little_endian, interp)
    except OSError as e:
        raise TbxError(f"cannot read {p}: {e.strerror}") from e
    except ELFError as e:
        raise TbxError(f"{p} is not a valid ELF file: {e}") from e



def remembered(path: str, tag: str, compute):
    """``compute(path)`` for a file, remembered in the same cache by the file's identity (the
    QEMU version of an emulator, for instance: one run of ``--version`` per emulator file)."""
    ident = _identity(path)
    if ident is None:
        return compute(path)
    key = f"{tag}\0{path}\0{ident}"
    cache = _load_cache()
    if key in cache and isinstance(cache[key], dict):
        return cache[key].get("value")
    value = compute(path)
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{tag}\0{path}\0")}
    cache[key] = {"value": value}
    _store_cache(cache)
    return value
