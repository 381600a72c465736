import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbx_arch import arch as archmod
from toolbx_arch import naming
from toolbx_arch.errors import TbxError

X86 = archmod.resolve("x86_64")
ARM = archmod.resolve("aarch64")
TAG_RE = re.compile(r"[\w][\w.-]{0,127}")


@pytest.mark.parametrize("ref,arch,expected", [
    ("registry.example.org/fedora-toolbox:44", "arm64", "registry.example.org/fedora-toolbox:44-arm64"),
    ("registry.example.org/fedora-toolbox", "arm64", "registry.example.org/fedora-toolbox:latest-arm64"),
    ("registry.example.org:5000/fedora-toolbox", "arm64", "registry.example.org:5000/fedora-toolbox:latest-arm64"),
    ("registry.example.org:5000/fedora-toolbox:44", "ppc64le", "registry.example.org:5000/fedora-toolbox:44-ppc64le"),
    ("localhost:5000/a/b/c:1.2", "armv7", "localhost:5000/a/b/c:1.2-arm"),
    ("127.0.0.1:5000/x:1", "i386", "127.0.0.1:5000/x:1-386"),
    ("fedora-toolbox:44", "arm64", "docker.io/library/fedora-toolbox:44-arm64"),
    ("quay.io/toolbx/ubuntu-toolbox:24.04", "aarch64", "quay.io/toolbx/ubuntu-toolbox:24.04-arm64"),
    # an existing suffix of the same arch is normalised, never doubled
    ("registry.example.org/fedora-toolbox:44-aarch64", "arm64", "registry.example.org/fedora-toolbox:44-arm64"),
    ("registry.example.org/fedora-toolbox:44-arm64", "aarch64", "registry.example.org/fedora-toolbox:44-arm64"),
    # native: unchanged (but qualified)
    ("registry.example.org/fedora-toolbox:44", "x86_64", "registry.example.org/fedora-toolbox:44"),
    ("registry.example.org/fedora-toolbox", "amd64", "registry.example.org/fedora-toolbox:latest"),
])
def test_local_image_name(ref, arch, expected):
    assert naming.local_image_name(ref, archmod.resolve(arch), X86) == expected


def test_digest_reference_rule():
    d = "sha256:" + "ab" * 32
    assert naming.local_image_name(f"reg.example.org/f@{d}", ARM, X86) == "reg.example.org/f:sha256-abababababab-arm64"
    assert naming.local_image_name(f"reg.example.org/f:44@{d}", ARM, X86) == "reg.example.org/f:sha256-abababababab-arm64"
    assert naming.local_image_name(f"reg.example.org/f@{d}", X86, X86) == "reg.example.org/f:sha256-abababababab"


def test_over_long_tags_stay_valid_and_distinct():
    t1, t2 = "a" * 128, "a" * 127 + "b"
    n1 = naming.local_image_name(f"r.example.org/x:{t1}", ARM, X86)
    n2 = naming.local_image_name(f"r.example.org/x:{t2}", ARM, X86)
    for n in (n1, n2):
        tag = n.rsplit(":", 1)[1]
        assert len(tag) <= 128 and TAG_RE.fullmatch(tag) and tag.endswith("-arm64")
    assert n1 != n2


def test_native_arch_on_an_aarch64_host_has_no_suffix():
    assert naming.local_image_name("r.example.org/x:1", ARM, ARM) == "r.example.org/x:1"
    assert naming.local_image_name("r.example.org/x:1", X86, ARM) == "r.example.org/x:1-amd64"


@pytest.mark.parametrize("image,expected", [
    ("registry.example.org/fedora-toolbox:44-arm64", "fedora-toolbox-44-arm64"),
    ("registry.example.org/fedora-toolbox:44", "fedora-toolbox-44"),
    ("127.0.0.1:5000/tbx-test/debian:12-arm64", "debian-12-arm64"),
    ("r.example.org/ubuntu-toolbox:24.04-riscv64", "ubuntu-toolbox-24.04-riscv64"),
])
def test_container_name(image, expected):
    assert naming.container_name(image) == expected


@pytest.mark.parametrize("bad", ["", " ", "upper/Case:1", "a b", "x:", "x@sha256:zz", "reg.example.org/:1",
                                 "x:" + "a" * 129, "-x:1"])
def test_invalid_references(bad):
    with pytest.raises(TbxError, match="not a valid image reference"):
        naming.parse_reference(bad)


def test_parse_registry_with_port_is_not_a_tag():
    r = naming.parse_reference("registry.example.org:5000/a/b")
    assert (r.domain, r.path, r.tag) == ("registry.example.org:5000", "a/b", None)
    r = naming.parse_reference("localhost/a:1")
    assert (r.domain, r.path, r.tag) == ("localhost", "a", "1")


@pytest.mark.parametrize("tag,base,arch", [
    ("44-aarch64", "44", "aarch64"), ("44-arm64", "44", "aarch64"), ("bookworm-ppc64le", "bookworm", "ppc64le"),
    ("24.04-x86_64", "24.04", "x86_64"), ("24.04-x86-64", "24.04", "x86_64"), ("1-armhf", "1", "armv7"),
    ("44", "44", None), ("latest", "latest", None), ("arm64", "arm64", None),
])
def test_split_arch_suffix(tag, base, arch):
    b, a = naming.split_arch_suffix(tag)
    assert b == base and (a.name if a else None) == arch


def test_container_name_validation():
    assert naming.validate_container_name("ok-name_1.x") == "ok-name_1.x"
    for bad in ("", "-x", "a/b", "a b", "ü"):
        with pytest.raises(TbxError):
            naming.validate_container_name(bad)


# --- properties ----------------------------------------------------------------------------------

component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}", fullmatch=True)
domain = st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9]{0,8}\.(org|io|example)(:[1-9][0-9]{1,4})?", fullmatch=True),
                   st.from_regex(r"localhost(:[1-9][0-9]{1,4})?", fullmatch=True))
tag = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True))
arches = st.sampled_from(archmod.ARCHES)


@st.composite
def references(draw):
    d = draw(domain)
    parts = draw(st.lists(component, min_size=1, max_size=3))
    if d is None and len(parts) > 1 and any(c in parts[0] for c in ".:"):
        parts[0] = parts[0].replace(".", "-")  # a first component with a dot would be a registry host
    path = "/".join(parts)
    t = draw(tag)
    s = (f"{d}/" if d else "") + path + (f":{t}" if t else "")
    return s


@settings(max_examples=300, deadline=None)
@given(references(), arches, st.sampled_from(["x86_64", "aarch64"]))
def test_local_names_are_valid_and_keep_the_repository(ref, a, host_name):
    host = archmod.resolve(host_name)
    local = naming.local_image_name(ref, a, host)
    r = naming.parse_reference(local)  # still a valid reference
    src = naming.normalize(ref)
    assert r.repository == src.repository
    assert r.tag and TAG_RE.fullmatch(r.tag) and len(r.tag) <= 128
    if a == host:
        assert r.tag == src.tag
    else:
        assert r.tag.endswith(f"-{a.oci_arch}")
        # the suffix names exactly this arch
        assert naming.split_arch_suffix(r.tag)[1] == a
    name = naming.container_name(local)
    assert naming.validate_container_name(name)


@settings(max_examples=200, deadline=None)
@given(references(), arches, arches)
def test_distinct_arches_never_share_a_local_name(ref, a, b):
    if a != b:
        assert naming.local_image_name(ref, a, X86) != naming.local_image_name(ref, b, X86)
