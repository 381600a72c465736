"""CPU models: which models an emulator knows (``-cpu help``, run confined), for ``tbx create --cpu``."""

from __future__ import annotations

from . import arch as archmod
from .arch import Arch
from .errors import TbxError


def parse_cpu_models(text: str) -> list[str]:
    """CPU model names from ``qemu-<arch> -cpu help``, whose layout differs per target: indented
    names (aarch64, arm), one name per line (riscv64), or ``family name  description`` (x86,
    s390x, ppc). The x86 list of CPUID flags that follows the models is not read."""
    models: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.rstrip().endswith(":") and not line.startswith(" "):
            if line.startswith("Recognized"):
                break
            continue
        words = line.split()
        name = words[0] if line.startswith(" ") or len(words) == 1 else words[1]
        if name not in models:
            models.append(name)
    return models


def check_cpu(a: Arch, emulator: str | None, cpu: str, *, host_arch: Arch | None = None) -> str:
    """``cpu`` when the emulator of ``a`` knows that model (``-cpu help``); a TbxError listing the
    models otherwise, or when ``a`` is not emulated (QEMU_CPU would do nothing there)."""
    from . import runner

    if not archmod.needs_emulation(a, host_arch) or not emulator:
        raise TbxError(f"--cpu chooses the CPU model QEMU emulates, and {a.name} runs without emulation here",
                       fix="Leave out --cpu for this arch")
    # Never run unconfined: the emulator may be a pulled or a user's file (QEMU 7.2 exits 1 after the list)
    _, out, err = runner.run_confined(emulator, ["-cpu", "help"], timeout=30)
    models = parse_cpu_models(out)
    if not models:
        raise TbxError(f"{emulator} did not list its CPU models", details=(err or out).strip()[-600:] or None)
    if cpu not in models:
        import textwrap

        raise TbxError(f"{emulator} does not know the CPU model {cpu!r}",
                       details=textwrap.fill("Models: " + ", ".join(models), width=100),
                       fix=f"Pick one of the models above, e.g. --cpu {models[0]}")
    return cpu
