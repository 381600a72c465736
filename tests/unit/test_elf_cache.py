"""The ELF answer cache: a file read once is answered from the cache until it changes."""

from __future__ import annotations

import os

from toolbx_arch import elf

from .elfgen import make_elf


def test_cached_until_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(elf, "_cache_path", lambda: str(tmp_path / "run" / "elf-cache.json"))
    f = tmp_path / "qemu-aarch64-static"
    make_elf(f, e_machine=62)
    first = elf.read(f)
    assert first.e_machine == 62 and first.is_static
    assert (tmp_path / "run" / "elf-cache.json").exists()

    calls = []
    real = elf._read
    monkeypatch.setattr(elf, "_read", lambda p: calls.append(p) or real(p))
    assert elf.read(f) == first and calls == []  # from the cache

    make_elf(f, e_machine=183, interp="/lib/ld-linux-aarch64.so.1")  # rewritten: size and mtime change
    os.utime(f, ns=(1, 1))
    again = elf.read(f)
    assert calls == [str(f)] and again.e_machine == 183 and not again.is_static


def test_a_damaged_cache_is_ignored(tmp_path, monkeypatch):
    cache = tmp_path / "elf-cache.json"
    cache.write_text("{not json")
    monkeypatch.setattr(elf, "_cache_path", lambda: str(cache))
    f = tmp_path / "x"
    make_elf(f, e_machine=62)
    assert elf.read(f).e_machine == 62
