"""Acceleration's pure parts (accel): the image's packages, the source-revision rule, the modes."""

from __future__ import annotations

import pytest

from toolbx_arch import accel
from toolbx_arch.errors import TbxError

STATUS = """Package: gcc-14
Status: install ok installed
Architecture: arm64
Version: 14.2.0-19

Package: gcc-13
Status: deinstall ok config-files
Version: 13.3.0-1

Package: binutils-aarch64-linux-gnu
Status: install ok installed
Version: 2.44-3

Package: g++-14
Status: install ok installed
Version: 14.2.0-19
"""


def test_the_images_installed_packages_and_newest_gcc():
    pkgs = accel._status(STATUS)
    assert pkgs == {"gcc-14": "14.2.0-19", "binutils-aarch64-linux-gnu": "2.44-3", "g++-14": "14.2.0-19"}
    assert accel.ImageFacts(pkgs, set(), set()).gcc() == 14
    assert accel.ImageFacts({"gcc-12": "x", "gcc-14": "y", "gcc": "z"}, set(), set()).gcc() == 14
    assert accel.ImageFacts({"libgcc-s1": "x"}, set(), set()).gcc() is None


@pytest.mark.parametrize("native, cross, same", [
    ("14.2.0-19", "14.2.0-19cross1", True),            # Debian 13: the same source revision
    ("12.2.0-14+deb12u1", "12.2.0-14cross1", False),   # Debian 12: the native one has a security fix
    ("14.2.0-19", "14.2.0-20cross1", False),
    ("14.2.0-19", "14.2.0-19cross2", True),
])
def test_the_compiler_must_be_built_from_the_same_source_revision(native, cross, same):
    mine = {"gcc-14": native, "binutils-aarch64-linux-gnu": "2.44-3"}
    theirs = {"gcc-14-aarch64-linux-gnu": cross, "binutils-aarch64-linux-gnu": "2.44-3"}
    diffs = accel.compare(mine, theirs, "aarch64-linux-gnu", 14)
    assert (diffs == []) is same
    if not same:
        assert native in diffs[0] and cross in diffs[0]


def test_binutils_and_gxx_are_compared_too():
    mine = {"gcc-14": "14.2.0-19", "g++-14": "14.2.0-19", "binutils-aarch64-linux-gnu": "2.44-3"}
    theirs = {"gcc-14-aarch64-linux-gnu": "14.2.0-19cross1", "binutils-aarch64-linux-gnu": "2.44-2"}
    diffs = accel.compare(mine, theirs, "aarch64-linux-gnu", 14)
    assert any("binutils" in d and "2.44-2" in d for d in diffs)
    assert any("g++-14-aarch64-linux-gnu is not in the native tools" in d for d in diffs)


def test_modes():
    assert accel.mode(None) is None and accel.mode("no") is None
    assert accel.mode("matched") == "matched" and accel.mode("unmatched") == "unmatched"
    with pytest.raises(TbxError):
        accel.mode("sometimes")


def test_every_arch_gets_bash_types_and_sudo_keeps_the_environment():
    """Native bash takes HOSTTYPE and MACHTYPE from the environment: every arch tbx accelerates
    says its own, and sudo is told to keep each name tbx sets."""
    assert set(accel.BASH_TYPES) == set(accel.DEBIAN)
    for arch, (_, triplet) in accel.DEBIAN.items():
        env = accel.environment(arch)
        assert env["MACHTYPE"].startswith(env["HOSTTYPE"] + "-") and env["HOSTTYPE"] != "x86_64"
        assert env["MACHTYPE"].split("-")[-1] == triplet.split("-")[-1]  # gnu, gnueabihf
        assert env["GCC_EXEC_PREFIX"] == "/usr/lib/gcc/"
        assert set(env["TBX_SUDO_KEEP"].split()) == set(env) - {"TBX_SUDO_KEEP"}


def test_stale_tools_are_those_no_image_has_and_no_container_binds(tmp_path):
    top = str(tmp_path / "accel")
    entries = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", ".new-x1y2"]
    images = ["sha256:" + "a" * 64, "dddddddddddd" + "0" * 52]
    sources = [f"{top}/bbbbbbbbbbbb/usr/bin/gcc", "/home/u", "", f"{top}-other/cccccccccccc/x"]
    assert accel.stale(top, entries, images, sources) == ["cccccccccccc"]
    assert accel.stale(top, entries, images, [*sources, f"{top}/cccccccccccc/lib64/ld-linux-x86-64.so.2"]) == []
