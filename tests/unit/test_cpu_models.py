"""CPU model lists as `qemu-<arch> -cpu help` prints them (QEMU 7.2 layouts, trimmed)."""

from toolbx_arch.cpumodels import parse_cpu_models

AARCH64 = "Available CPUs:\n  a64fx\n  cortex-a35\n  cortex-a53\n  max\n"
X86 = ("Available CPUs:\nx86 486                   (alias configured by machine type)\n"
       "x86 Broadwell-IBRS        (alias of Broadwell-v3)\nx86 max                   Enables all features\n\n"
       "Recognized CPUID flags:\n  3dnow 3dnowext abm\n")
RISCV = "any\nrv64\nsifive-u54\n"
S390 = ("s390 qemu            QEMU Virtual CPU version 2.5+       (migration-safe)\n"
        "s390 z900-base       IBM zSeries 900 GA1                 (static, migration-safe)\n\n"
        "Recognized feature flags:\ns390 aefsi           AES-XTS\n")
PPC = "PowerPC mpc5xx           PVR 00020020\nPowerPC rcpu             (alias for mpc5xx)\n"


def test_each_layout_gives_the_model_names():
    assert parse_cpu_models(AARCH64) == ["a64fx", "cortex-a35", "cortex-a53", "max"]
    assert parse_cpu_models(X86) == ["486", "Broadwell-IBRS", "max"]
    assert parse_cpu_models(RISCV) == ["any", "rv64", "sifive-u54"]
    assert parse_cpu_models(S390) == ["qemu", "z900-base"]
    assert parse_cpu_models(PPC) == ["mpc5xx", "rcpu"]
    assert parse_cpu_models("") == []
