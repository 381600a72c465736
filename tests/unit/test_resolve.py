import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbx_arch import arch as archmod
from toolbx_arch import distros, naming, resolve
from toolbx_arch.config import Config
from toolbx_arch.errors import TbxError

X86 = archmod.resolve("x86_64")
ALIASES = [(a, n) for a in archmod.ARCHES for n in a.all_names]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(distros.DISTROS), st.sampled_from(ALIASES), st.sampled_from(["", "registry.example.org:5000/"]))
def test_round_trip_for_every_supported_distro_arch_and_alias(d, arch_alias, mirror):
    a, alias = arch_alias
    ref = d.image_for(d.examples[0])
    if mirror:  # the same image behind a registry with a port
        ref = mirror + ref.split("/", 1)[1]
    resolved = archmod.resolve(alias)
    local = naming.local_image_name(ref, resolved, X86)
    back_ref, back_arch = resolve.arch_from_tag(local)
    if a == X86:
        assert (back_ref, back_arch) == (local, None) and local == str(naming.normalize(ref))
    else:
        assert (back_ref, back_arch) == (str(naming.normalize(ref)), a)
        # the user's spelling of the suffix lands on the same local name
        for other in a.all_names:
            assert naming.local_image_name(f"{ref}-{other}", a, X86) == local


@pytest.mark.parametrize("image,arch,expect_ref,expect_arch", [
    ("registry.fedoraproject.org/fedora-toolbox:44-aarch64", None, "registry.fedoraproject.org/fedora-toolbox:44", "aarch64"),
    ("registry.fedoraproject.org/fedora-toolbox:44-arm64", "aarch64", "registry.fedoraproject.org/fedora-toolbox:44", "aarch64"),
    ("quay.io/toolbx/ubuntu-toolbox:24.04-ppc64el", None, "quay.io/toolbx/ubuntu-toolbox:24.04", "ppc64le"),
    ("registry.fedoraproject.org/fedora-toolbox:44", "s390x", "registry.fedoraproject.org/fedora-toolbox:44", "s390x"),
    ("registry.example.org:5000/fedora-toolbox:44-riscv64", None, "registry.example.org:5000/fedora-toolbox:44", "riscv64"),
    # not a supported distro: the suffix means nothing (no local image says otherwise)
    ("registry.example.org/my-app:2-arm64", None, "registry.example.org/my-app:2-arm64", "x86_64"),
])
def test_target(monkeypatch, image, arch, expect_ref, expect_arch):
    monkeypatch.setattr(archmod, "host", lambda machine=None: X86)
    t = resolve.target(image=image, distro=None, release=None, arch=arch, cfg=Config())
    assert (t.ref, t.arch.name) == (expect_ref, expect_arch)
    assert t.local_image == naming.local_image_name(expect_ref, t.arch, X86)
    assert t.container == naming.container_name(t.local_image)


def test_conflicting_arch_and_suffix_names_both(monkeypatch):
    with pytest.raises(TbxError) as e:
        resolve.target(image="registry.fedoraproject.org/fedora-toolbox:44-aarch64", distro=None, release=None,
                       arch="ppc64le", cfg=Config())
    assert "ppc64le" in e.value.message and "aarch64" in e.value.message


def test_unsupported_image_suffix_counts_only_when_the_local_image_is_that_arch():
    img = "registry.example.org/my-app:2-arm64"
    t = resolve.target(image=img, distro=None, release=None, arch=None, cfg=Config(),
                       local_arch_of=lambda n: "arm64")
    assert t.arch.name == "aarch64" and t.local_image == img and t.container == "my-app-2-arm64"
    t = resolve.target(image=img, distro=None, release=None, arch=None, cfg=Config(default_arch="x86_64"),
                       local_arch_of=lambda n: "amd64")
    assert t.arch.name == "x86_64"


def test_distro_release(monkeypatch):
    t = resolve.target(image=None, distro="fedora", release="44", arch="aarch64", cfg=Config())
    assert t.ref == "registry.fedoraproject.org/fedora-toolbox:44" and t.container == "fedora-toolbox-44-arm64"
    t = resolve.target(image=None, distro="rhel", release="9.6", arch="x86_64", cfg=Config())
    assert t.ref == "registry.access.redhat.com/ubi9/toolbox:9.6"
    with pytest.raises(TbxError, match="release '44-aarch64' is not valid for fedora"):
        resolve.target(image=None, distro="fedora", release="44-aarch64", arch=None, cfg=Config())
    with pytest.raises(TbxError) as e:
        resolve.target(image=None, distro="gentoo", release="1", arch=None, cfg=Config())
    assert "fedora" in e.value.details and "debian" in e.value.details
    cfg = Config(images={"debian:12": "registry.example.org/deb:12"})
    t = resolve.target(image=None, distro="debian", release="12", arch="arm64", cfg=cfg)
    assert t.ref == "registry.example.org/deb:12" and t.container == "deb-12-arm64"
    with pytest.raises(TbxError, match="cannot be combined"):
        resolve.target(image="x", distro="fedora", release=None, arch=None, cfg=Config())


@pytest.mark.parametrize("os_release,expect", [
    ({"ID": "arch"}, "quay.io/toolbx/arch-toolbox:latest"),
    ({"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux trixie/sid"}, "quay.io/toolbx-images/debian-toolbox:testing"),
    ({"ID": "debian", "VERSION_ID": "12"}, "quay.io/toolbx-images/debian-toolbox:12"),
])
def test_default_image_on_rolling_and_numbered_hosts(monkeypatch, os_release, expect):
    assert resolve.image_for_distro(None, None, Config(), os_release) == expect
    t = resolve.target(image=None, distro=None, release=None, arch="aarch64", cfg=Config(),
                       host_release=lambda: os_release)
    assert t.ref == expect


def test_a_rolling_host_without_a_rolling_image_never_mentions_a_flag_not_typed(monkeypatch):
    with pytest.raises(TbxError) as e:
        resolve.image_for_distro(None, None, Config(), {"ID": "fedora"})  # no VERSION_ID
    assert "--release is needed" not in e.value.message and "no release number" in e.value.message
    with pytest.raises(TbxError, match="has no toolbox image tbx knows"):
        resolve.image_for_distro(None, None, Config(), {"ID": "opensuse-tumbleweed"})
