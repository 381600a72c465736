"""`tbx check` logic on fixture roots: emulators made as tiny ELF files in the test."""

import json
import os
import shutil

import pytest

from toolbx_arch import arch as archmod
from toolbx_arch import readiness
from toolbx_arch.errors import TbxError

from .elfgen import make_elf

TOOLS = {"podman": "4.3.1", "skopeo": "1.9.3"}
ARM = archmod.resolve("aarch64")
RELEASES: dict[str, dict] = {}  # fake root -> its os-release fields (passed in, as the CLI does)


def fake_root(tmp_path, fixtures_dir, *, family="debian"):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    RELEASES[str(root)] = {"debian": {"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "VERSION_ID": "12"},
                           "fedora": {"ID": "fedora", "VERSION_ID": "44"}, "arch": {"ID": "arch"},
                           "suse": {"ID": "opensuse-tumbleweed", "ID_LIKE": "opensuse suse"}}[family]
    (root / "etc/subuid").write_text("alice:100000:65536\ncontainers:1000000:1000000\n")
    (root / "etc/subgid").write_text("alice:100000:65536\n")
    make_elf(root / "usr/bin/newuidmap", e_machine=62, interp="/lib64/ld-linux-x86-64.so.2")
    proc = tmp_path / "proc"
    shutil.copytree(fixtures_dir / "binfmt_misc", proc)
    return root, proc


def run(root, proc, arches, kernel="6.18.0", uid=0, user="root", monkeypatch=None):
    if monkeypatch:
        monkeypatch.setenv("PATH", "/usr/bin")
    return readiness.check(arches, root=root, proc=proc, kernel=kernel, host_machine="x86_64", tools=TOOLS,
                           uid=uid, user=user, home=root / "home", max_userns=1000,
                           os_release=RELEASES[str(root)])


def test_static_emulator_for_this_host_is_ready(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    make_elf(root / "usr/bin/qemu-aarch64-static", e_machine=62)
    rep = run(root, proc, ["aarch64"], monkeypatch=monkeypatch)
    a = rep.arches[0]
    assert rep.ready and a.ready and a.mode == "emulated"
    assert a.emulator.path == "/usr/bin/qemu-aarch64-static" and a.emulator.static
    assert a.emulator.in_container == "/run/host/usr/bin/qemu-aarch64-static"
    # the captured host entry (PF, disabled) is not in use: no note
    assert not any("lacks the C flag" in n for n in a.notes)
    json.dumps(rep.as_dict())
    # enabled, it is noted (sudo would fail under tools that use it), and still not a problem
    (proc / "qemu-aarch64").write_text((proc / "qemu-aarch64").read_text().replace("disabled", "enabled", 1))
    a = run(root, proc, ["aarch64"], monkeypatch=monkeypatch).arches[0]
    assert a.ready and any("qemu-aarch64 lacks the C flag" in n for n in a.notes)


@pytest.mark.parametrize("case,expect,fix", [
    ("dynamic", "dynamically linked", "apt-get install -y qemu-user-static"),
    ("foreign", "built for aarch64, not for this x86_64 host", "apt-get install -y qemu-user-static"),
    ("absent", "no QEMU user-mode emulator for aarch64", "apt-get install -y qemu-user-static"),
    ("noexec", "is not executable", "chmod 755"),
    ("notelf", "is not an ELF executable", "apt-get install"),
])
def test_unusable_emulators(tmp_path, fixtures_dir, monkeypatch, case, expect, fix):
    root, proc = fake_root(tmp_path, fixtures_dir)
    p = root / "usr/bin/qemu-aarch64-static"
    if case == "dynamic":
        make_elf(p, e_machine=62, interp="/lib64/ld-linux-x86-64.so.2")
    elif case == "foreign":
        make_elf(p, e_machine=183)
    elif case == "noexec":
        make_elf(p, e_machine=62, mode=0o644)
    elif case == "notelf":
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\necho fake qemu\n")
        p.chmod(0o755)
    rep = run(root, proc, ["aarch64"], monkeypatch=monkeypatch)
    a = rep.arches[0]
    assert not rep.ready and not a.ready
    assert expect in a.problems[0].problem
    assert fix in a.problems[0].fix


def test_fix_commands_follow_the_distro_family(tmp_path, fixtures_dir, monkeypatch):
    expected = {"debian": "apt-get install", "fedora": "dnf install", "arch": "pacman -S", "suse": "zypper install"}
    for fam, cmd in expected.items():
        root, proc = fake_root(tmp_path / fam, fixtures_dir, family=fam)
        rep = run(root, proc, ["aarch64"], monkeypatch=monkeypatch)
        assert cmd in rep.arches[0].problems[0].fix, fam


def test_absolute_symlink_is_resolved_inside_the_root(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    make_elf(root / "opt/qemu/bin/qemu-aarch64", e_machine=62)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    os.symlink("/opt/qemu/bin/qemu-aarch64", root / "usr/bin/qemu-aarch64-static")
    rep = run(root, proc, ["aarch64"], monkeypatch=monkeypatch)
    emu = rep.arches[0].emulator
    assert rep.ready and emu.real_path == "/opt/qemu/bin/qemu-aarch64"
    assert emu.in_container == "/run/host/opt/qemu/bin/qemu-aarch64"


def test_a_dynamic_one_first_and_a_static_one_later_picks_the_static(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    make_elf(root / "usr/bin/qemu-aarch64", e_machine=62, interp="/lib64/ld-linux-x86-64.so.2")
    make_elf(root / "usr/libexec/qemu-binfmt/aarch64-binfmt-P", e_machine=62, qemu="aarch64")
    rep = run(root, proc, ["aarch64"], monkeypatch=monkeypatch)
    assert rep.ready and rep.arches[0].emulator.path == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"


def test_old_kernel_in_private_mode_is_not_ready(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    make_elf(root / "usr/bin/qemu-aarch64-static", e_machine=62)
    monkeypatch.setenv("TBX_BINFMT_MODE", "private")
    rep = run(root, proc, ["aarch64"], kernel="6.6.30-generic", monkeypatch=monkeypatch)
    assert not rep.ready and not rep.host.kernel_ok and rep.host.binfmt_mode == "private"
    assert any("older than 6.7" in p.problem for p in rep.host.problems)
    assert any("< 6.7" in p.problem for p in rep.arches[0].problems)
    # native arches need no emulation but still need the host prerequisites
    rep = run(root, proc, ["x86_64"], kernel="6.6.30", monkeypatch=monkeypatch)
    assert rep.arches[0].mode == "native" and not rep.ready


def _enable(proc, name, flags=None):
    text = (proc / name).read_text().replace("disabled", "enabled")
    if flags is not None:
        text = "\n".join(f"flags: {flags}" if line.startswith("flags:") else line for line in text.splitlines())
    (proc / name).write_text(text)


def test_old_kernel_uses_the_hosts_enabled_entry_with_the_f_flag(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    rep = run(root, proc, ["aarch64"], kernel="6.1.0-13-amd64", monkeypatch=monkeypatch)  # auto -> host mode
    arch = rep.arches[0]
    assert rep.host.binfmt_mode == "host" and not rep.host.problems  # the kernel is no problem here
    assert not rep.ready and arch.binfmt_mode == "host" and arch.host_entry is None
    assert "no usable host binfmt_misc entry for aarch64" in arch.problems[0].problem
    assert arch.problems[0].fix == "sudo apt-get install -y qemu-user-static binfmt-support && " \
                                   "sudo update-binfmts --enable qemu-aarch64"
    _enable(proc, "qemu-aarch64")  # PF: usable, but sudo will fail inside
    arch = run(root, proc, ["aarch64"], kernel="6.1.0", monkeypatch=monkeypatch).arches[0]
    assert arch.ready and arch.host_entry == "qemu-aarch64" and arch.emulator is None
    assert any("lacks the C flag" in n and "credentials yes" in n for n in arch.notes)
    _enable(proc, "qemu-aarch64", flags="PFC")
    arch = run(root, proc, ["aarch64"], kernel="6.1.0", monkeypatch=monkeypatch).arches[0]
    assert arch.ready and not any("lacks the C flag" in n for n in arch.notes)
    _enable(proc, "qemu-aarch64", flags="P")  # without F the container cannot reach the interpreter
    arch = run(root, proc, ["aarch64"], kernel="6.1.0", monkeypatch=monkeypatch).arches[0]
    assert not arch.ready and "F flag" in arch.problems[0].problem


def test_host_mode_can_be_forced_on_a_new_kernel_and_a_bad_mode_is_refused(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    _enable(proc, "qemu-aarch64")
    monkeypatch.setenv("TBX_BINFMT_MODE", "host")
    rep = run(root, proc, ["aarch64"], kernel="6.18.0", monkeypatch=monkeypatch)
    assert rep.ready and rep.arches[0].host_entry == "qemu-aarch64"
    monkeypatch.setenv("TBX_BINFMT_MODE", "sometimes")
    with pytest.raises(TbxError, match="not one of auto, private, host"):
        run(root, proc, ["aarch64"], kernel="6.18.0", monkeypatch=monkeypatch)


def test_native_and_compat_need_no_emulator(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    rep = run(root, proc, ["x86_64", "i386"], monkeypatch=monkeypatch)
    assert [(a.arch, a.mode, a.ready, a.emulator) for a in rep.arches] == [
        ("x86_64", "native", True, None), ("i386", "compat", True, None)]


def test_missing_tools_and_rootless_ranges(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    monkeypatch.setenv("PATH", "/usr/bin")
    rep = readiness.check(None, root=root, proc=proc, kernel="6.18", host_machine="x86_64",
                          tools={"podman": None, "skopeo": None}, uid=1234, user="bob", home=root, max_userns=1000,
                          os_release=RELEASES[str(root)])
    probs = " | ".join(p.problem for p in rep.host.problems)
    assert not rep.ready
    assert "podman is not installed" in probs and "skopeo is not installed" in probs
    assert "no subordinate uid range" in probs
    assert any("usermod --add-subuids" in p.fix for p in rep.host.problems)
    rep = readiness.check(None, root=root, proc=proc, kernel="6.18", host_machine="x86_64", tools=TOOLS,
                          uid=1000, user="alice", home=root, max_userns=1000,
                          os_release=RELEASES[str(root)])
    assert rep.ready and rep.host.userns["subuid"] == [(100000, 65536)]


def test_host_entries_are_reported_with_their_flags(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    make_elf(root / "usr/bin/qemu-aarch64-static", e_machine=62)
    # make the captured entry enabled to see the C-flag note
    text = (proc / "qemu-aarch64").read_text().replace("disabled", "enabled")
    (proc / "qemu-aarch64").write_text(text)
    rep = run(root, proc, ["aarch64"], monkeypatch=monkeypatch)
    a = rep.arches[0]
    assert a.host_binfmt[0]["name"] == "qemu-aarch64" and a.host_binfmt[0]["credentials"] is False
    assert any("lacks the C flag" in n for n in a.notes)


def test_check_never_writes_procfs(tmp_path, fixtures_dir, monkeypatch):
    root, proc = fake_root(tmp_path, fixtures_dir)
    for p in proc.iterdir():
        p.chmod(0o444)
    proc.chmod(0o555)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in proc.iterdir()}
    run(root, proc, None, monkeypatch=monkeypatch)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in proc.iterdir()} == before
    proc.chmod(0o755)
