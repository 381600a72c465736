"""ELF facts with pyelftools: machine, class, static or dynamic, interpreter."""

from __future__ import annotations

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
    """Read an ELF file's header; TbxError if it is missing or not ELF."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    p = str(path)
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
            e_machine = machine if isinstance(machine, int) else _E_MACHINE.get(machine, -1)
            return ElfInfo(p, e_machine, elf.elfclass, elf.little_endian, interp)
    except OSError as e:
        raise TbxError(f"cannot read {p}: {e.strerror}") from e
    except ELFError as e:
        raise TbxError(f"{p} is not a valid ELF file: {e}") from e


# pyelftools reports e_machine by name.
_E_MACHINE = {"EM_386": 3, "EM_X86_64": 62, "EM_AARCH64": 183, "EM_ARM": 40, "EM_PPC64": 21,
              "EM_S390": 22, "EM_RISCV": 243, "EM_PPC": 20, "EM_MIPS": 8}
