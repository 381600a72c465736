from toolbx_arch import arch as archmod
from toolbx_arch import binfmt


def test_parse_real_host_entries(fixtures_dir):
    entries = binfmt.read_entries(fixtures_dir / "binfmt_misc")
    by = {e.name: e for e in entries}
    e = by["qemu-aarch64"]
    assert e.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert e.flags == "PF" and not e.has_credentials
    assert e.magic == archmod.resolve("aarch64").magic and e.mask == archmod.resolve("aarch64").mask
    assert e.matches(archmod.resolve("aarch64")) and not e.matches(archmod.resolve("x86_64"))
    assert by["python3.11"].kind in ("M", "E") and not by["python3.11"].matches(archmod.resolve("aarch64"))
    assert binfmt.read_status(fixtures_dir / "binfmt_misc") in ("enabled", "disabled")


def test_every_arch_is_matched_by_its_own_entry_only():
    for a in archmod.ARCHES:
        e = binfmt.Entry(a.binfmt_name, True, "/x", "FC", 0, a.magic, a.mask)
        assert [b.name for b in archmod.ARCHES if e.matches(b)] == [a.name]


def test_registration_line_round_trips():
    a = archmod.resolve("aarch64")
    line = binfmt.registration_line(a, "/run/host/usr/bin/qemu-aarch64-static")
    assert line.startswith(":qemu-aarch64:M:0:\\x7f\\x45\\x4c\\x46") and line.endswith(":/run/host/usr/bin/qemu-aarch64-static:PFC")
    name, kind, off, magic, mask, interp, flags = binfmt.parse_registration(line)
    assert (name, kind, off, magic, mask, interp, flags) == (
        "qemu-aarch64", "M", 0, a.magic, a.mask, "/run/host/usr/bin/qemu-aarch64-static", "PFC")
    # no raw ':' can hide in the escaped bytes (0x3a would be \x3a)
    assert line.count(":") == 7


def test_missing_mount_is_reported(tmp_path):
    assert binfmt.read_status(tmp_path / "nope") == "not mounted"
    assert binfmt.read_entries(tmp_path / "nope") == []
