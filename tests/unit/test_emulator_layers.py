"""Reading qemu binaries out of an OCI layout's layers (fixture layouts built here): order,
whiteouts, links, and tbx check's rules for each binary."""

import gzip
import hashlib
import io
import json
import tarfile

from toolbx_arch import arch as archmod
from toolbx_arch import emulators

from .elfgen import make_elf

X86 = archmod.resolve("x86_64")


def _layer(entries) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
    return gzip.compress(raw.getvalue())


def layout(tmp_path, layers) -> str:
    root = tmp_path / "oci"
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    descs = [{**put(_layer(entries)), "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"} for entries in layers]
    manifest = put(json.dumps({"schemaVersion": 2, "layers": descs}).encode())
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    return str(root)


def test_later_layers_whiteouts_and_links_decide_what_is_found(tmp_path):
    out = tmp_path / "files"
    out.mkdir()
    lay = layout(tmp_path, [
        [("./usr/bin/qemu-aarch64", "file", b"old"), ("./usr/bin/qemu-s390x", "file", b"s390"),
         ("./usr/bin/ls", "file", b"x"), ("./opt/q/qemu-riscv64-static", "file", b"rv")],
        [("./usr/bin/qemu-aarch64", "file", b"new"), ("./usr/bin/.wh.qemu-s390x", "file", b""),
         ("./usr/local/bin/qemu-riscv64", "sym", "/opt/q/qemu-riscv64-static"), ("./opt/q/.wh..wh..opq", "file", b"")],
    ])
    found = emulators._read_layers(lay, str(out))
    assert sorted(found) == ["/usr/bin/qemu-aarch64"]  # s390x whited out; riscv64's target hidden by opaque dir
    assert open(found["/usr/bin/qemu-aarch64"][0], "rb").read() == b"new"


def test_a_symlink_to_a_found_binary_is_found_too(tmp_path):
    out = tmp_path / "files"
    out.mkdir()
    lay = layout(tmp_path, [[("usr/bin/qemu-arm-static", "file", b"arm"),
                             ("usr/bin/qemu-arm", "sym", "qemu-arm-static")]])
    found = emulators._read_layers(lay, str(out))
    assert found["/usr/bin/qemu-arm"] == found["/usr/bin/qemu-arm-static"]


def test_each_binary_is_checked_like_tbx_check_does(tmp_path):
    good = make_elf(tmp_path / "good", e_machine=62)
    dyn = make_elf(tmp_path / "dyn", e_machine=62, interp="/lib64/ld-linux-x86-64.so.2")
    arm = make_elf(tmp_path / "arm", e_machine=183)
    junk = tmp_path / "junk"
    junk.write_text("#!/bin/sh\n")
    assert emulators.check_binary(str(good), 0o755, X86) is None
    assert "dynamically linked" in emulators.check_binary(str(dyn), 0o755, X86)
    assert "built for aarch64, not for this x86_64 host" in emulators.check_binary(str(arm), 0o755, X86)
    assert "not an ELF" in emulators.check_binary(str(junk), 0o755, X86)
    assert "not executable" in emulators.check_binary(str(good), 0o644, X86)


def test_names_and_versions(monkeypatch, tmp_path):
    # named after repository and tag: the same tag of another repository is another emulator
    assert emulators._name("registry.example.org/binfmt:qemu-v8.1", "sha256:" + "a" * 64) == \
        "registry.example.org-binfmt-qemu-v8.1"
    assert emulators._name("other.example.org:5000/binfmt:qemu-v8.1", "sha256:" + "a" * 64) == \
        "other.example.org-5000-binfmt-qemu-v8.1"
    assert emulators._name("registry.example.org/binfmt@sha256:" + "b" * 64, "sha256:" + "b" * 64) == \
        "registry.example.org-binfmt-sha256-bbbbbbbbbbbb"
    assert emulators._version_key("8.1.5") > emulators._version_key("7.2.0") > emulators._version_key(None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    if emulators.os.getuid() != 0:
        assert emulators.emulators_dir() == tmp_path / "tbx" / "emulators"


def test_qemu_is_recognised_by_its_version_text_without_running_it(tmp_path):
    from toolbx_arch.arch import resolve

    from .elfgen import make_elf

    good = make_elf(tmp_path / "a" / "qemu-aarch64-static", e_machine=62)
    assert emulators.qemu_identity(str(good)) == ("aarch64", "9.9.9")
    assert emulators.qemu_version(str(good)) == "9.9.9"
    assert emulators.not_qemu(str(good), resolve("aarch64")) is None
    assert "QEMU for aarch64, not for s390x" in emulators.not_qemu(str(good), resolve("s390x"))
    plain = make_elf(tmp_path / "b" / "qemu-aarch64-static", e_machine=62, qemu=False)
    assert emulators.qemu_identity(str(plain)) is None
    assert "not QEMU" in emulators.not_qemu(str(plain), resolve("aarch64"))
    # the version line alone is not enough: QEMU's copyright line follows it
    half = tmp_path / "half"
    half.write_bytes(plain.read_bytes() + b"qemu-aarch64 version 1.0\n")
    assert emulators.qemu_identity(str(half)) is None
