import pytest

from toolbx_arch import arch as archmod
from toolbx_arch.errors import TbxError

EXPECTED = {
    "x86_64": ("amd64", 62, ["amd64", "x86-64", "X86_64", "AMD64"]),
    "aarch64": ("arm64", 183, ["arm64", "ARM64", "AArch64", "arm64v8", "armv8"]),
    "armv7": ("arm", 40, ["arm", "armhf", "armv7l", "armv7hl", "ARMV7"]),
    "i386": ("386", 3, ["386", "i686", "i586", "x86"]),
    "ppc64le": ("ppc64le", 21, ["ppc64el", "powerpc64le", "PPC64LE"]),
    "s390x": ("s390x", 22, ["s390", "S390X"]),
    "riscv64": ("riscv64", 243, ["riscv", "rv64", "RISCV64"]),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_alias_resolves(name):
    oci, e_machine, aliases = EXPECTED[name]
    a = archmod.resolve(name)
    assert (a.name, a.oci_arch, a.e_machine) == (name, oci, e_machine)
    for alias in aliases + [name, oci, f"  {name} "]:
        assert archmod.resolve(alias) is a
    for alias in a.all_names:
        assert archmod.resolve(alias) is a and archmod.resolve(alias.upper()) is a


def test_table_is_complete_and_aliases_unique():
    assert {a.name for a in archmod.ARCHES} == set(EXPECTED)
    names = [n.lower() for a in archmod.ARCHES for n in a.all_names]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("bad", ["arm65", "sparc", "x86_65", "aarch64x", "mips"])
def test_unknown_names_list_the_supported_ones(bad):
    with pytest.raises(TbxError) as e:
        archmod.resolve(bad)
    assert repr(bad) in e.value.message
    for name in EXPECTED:
        assert name in e.value.details


def test_empty_name_is_an_error():
    with pytest.raises(TbxError, match="empty"):
        archmod.resolve("")


def test_modes_on_x86_64_and_aarch64_hosts():
    x86, arm64 = archmod.resolve("x86_64"), archmod.resolve("aarch64")
    assert archmod.mode(x86, x86) == "native"
    assert archmod.mode(archmod.resolve("i386"), x86) == "compat"
    assert archmod.mode(arm64, x86) == "emulated"
    assert archmod.mode(archmod.resolve("armv7"), arm64) == "compat"
    assert archmod.mode(x86, arm64) == "emulated"
    assert archmod.host("x86_64") is x86 and archmod.host("aarch64") is arm64


def test_elf_identity_bytes_agree_with_the_table():
    for a in archmod.ARCHES:
        assert a.magic[:4] == b"\x7fELF"
        assert a.magic[4] == (2 if a.elf_class == 64 else 1)
        assert a.magic[5] == (1 if a.endian == "little" else 2)
        machine = a.magic[18:20]
        assert int.from_bytes(machine, "little" if a.endian == "little" else "big") == a.e_machine
        assert len(a.magic) == len(a.mask) == 20


def _debian_binfmt(path):
    fields = dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    unesc = lambda s: bytes(int(s[i + 2:i + 4], 16) for i in range(0, len(s), 4))
    return unesc(fields["magic"]), unesc(fields["mask"])


def test_magic_and_mask_match_debians_qemu_user_static(fixtures_dir):
    """Captured from Debian 12's qemu-user-static (/usr/share/binfmts); ppc64le byte 7 is 0xfc."""
    by_qemu = {a.qemu: a for a in archmod.ARCHES}
    files = sorted((fixtures_dir / "binfmts").glob("qemu-*"))
    assert len(files) >= 5
    for f in files:
        a = by_qemu[f.name[len("qemu-"):]]
        assert _debian_binfmt(f) == (a.magic, a.mask), a.name
    assert archmod.resolve("ppc64le").mask[7] == 0xFC


def test_platform_strings():
    assert archmod.resolve("arm64").platform == "linux/arm64/v8"
    assert archmod.resolve("arm").platform == "linux/arm/v7"
    assert archmod.resolve("amd64").platform == "linux/amd64"
    assert archmod.resolve("aarch64").qemu_binary == "qemu-aarch64-static"
    assert archmod.resolve("armhf").qemu_binary == "qemu-arm-static"


@pytest.mark.parametrize("text,name", [
    ("linux/arm64", "aarch64"), ("linux/arm64/v8", "aarch64"), ("Linux/ARM64/V8", "aarch64"),
    ("linux/arm/v7", "armv7"), ("linux/amd64", "x86_64"), ("linux/riscv64", "riscv64"), ("linux/386", "i386"),
])
def test_platform_strings_name_an_arch(text, name):
    assert archmod.resolve(text).name == name
    assert archmod.lookup(text).name == name


def test_every_platform_tbx_prints_is_accepted_back():
    for a in archmod.ARCHES:  # check --json prints a.platform
        assert archmod.resolve(a.platform) is a


@pytest.mark.parametrize("text,words", [
    ("windows/amd64", "Linux containers only"), ("darwin/arm64", "Linux containers only"),
    ("linux/arm64/v7", "contradicts aarch64"), ("linux/arm/v6", "contradicts armv7"),
    ("linux/amd64/v3", "contradicts x86_64"), ("linux/sparc", "'sparc'"), ("linux/", "not a platform"),
    ("a/b/c/d", "not a platform"),
])
def test_bad_platform_strings_are_refused_with_the_reason(text, words):
    with pytest.raises(TbxError) as e:
        archmod.resolve(text)
    assert words in e.value.message and e.value.fix
    assert archmod.lookup(text) is None
