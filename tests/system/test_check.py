"""Issue 4: `tbx check` on the provisioned host."""

import json

from toolbx_arch import arch as archmod


def test_aarch64_is_emulated_by_the_static_qemu(root):
    r = root.tbx("check", "--arch", "aarch64")
    assert r.rc == 0, r.text
    row = next(l for l in r.out.splitlines() if l.startswith("aarch64"))
    assert "emulated" in row and "/usr/bin/qemu-aarch64-static" in row and "yes" in row


def test_x86_64_is_native_and_i386_compat(root):
    r = root.tbx("check", "--arch", "x86_64")
    assert r.rc == 0 and "native" in next(l for l in r.out.splitlines() if l.startswith("x86_64"))
    r = root.tbx("check", "--arch", "i386")
    assert r.rc == 0 and "compat" in next(l for l in r.out.splitlines() if l.startswith("i386"))


def test_json_has_an_entry_per_arch(root):
    r = root.tbx("check", "--json")
    assert r.rc == 0, r.text
    d = json.loads(r.out)
    assert d["schema"] == 1 and d["ready"] is True
    assert {a["arch"] for a in d["arches"]} == {a.name for a in archmod.ARCHES}
    aarch = next(a for a in d["arches"] if a["arch"] == "aarch64")
    assert aarch["mode"] == "emulated" and aarch["emulator"]["static"] is True
    assert aarch["emulator"]["in_container"] == "/run/host/usr/bin/qemu-aarch64-static"
    qemu = __import__("subprocess").run(["/usr/bin/qemu-aarch64-static", "--version"], capture_output=True,
                                        text=True).stdout.split()[2]  # "qemu-aarch64 version 7.2.x (…)"
    assert aarch["emulator"]["version"] == qemu and aarch["emulator"]["pulled"] is None
    assert d["host"]["binfmt_mode"] == "private" and aarch["binfmt_mode"] == "private"
    assert d["host"]["kernel_ok"] is True and d["host"]["podman"] and d["host"]["skopeo"]
    # The provisioned host's qemu entries are disabled: shown, not needed.
    assert all(not e["enabled"] for e in aarch["host_binfmt"])


def test_rootless_check_sees_the_users_ranges(rootless):
    r = rootless.tbx("check", "--json", "--arch", "aarch64")
    assert r.rc == 0, r.text
    d = json.loads(r.out)
    assert d["host"]["rootless"] is True and d["host"]["userns"]["subuid"]


def test_unknown_arch_lists_the_supported_ones(root):
    r = root.tbx("check", "--arch", "arm65")
    assert r.rc == 1 and "arm65" in r.err and "aarch64" in r.err and "Traceback" not in r.text


def test_debug_log_shows_every_external_command(root):
    r = root.tbx("--log-level", "debug", "check", "--arch", "x86_64")
    assert r.rc == 0
    assert "run: /usr/bin/podman --version" in r.err and "run: /usr/bin/skopeo --version" in r.err
