"""Issue 10: architecture from image tag suffixes; issue 9: config changes the default image."""

import json

import pytest


def arch_of(runner, name):
    return json.loads(runner.podman("container", "inspect", name).out)[0]["Config"]["Labels"]["io.github.tbx.arch"]


@pytest.fixture
def arm_local(root, host):
    assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    return f"{host.index_ref}-arm64"


def test_arch_suffixed_local_image_creates_that_arch_without_arch_flag(root, arm_local, cleanup):
    cleanup(root, "debian-12-arm64")
    root.rm_containers("debian-12-arm64")
    r = root.tbx("create", "--image", arm_local, "-y")
    assert r.rc == 0, r.text
    assert arch_of(root, "debian-12-arm64") == "aarch64"
    r = root.tbx("run", "-c", "debian-12-arm64", "uname", "-m")
    assert r.out.strip() == "aarch64"


def test_conflicting_arch_and_suffix_is_refused_and_creates_nothing(root, arm_local, name):
    before = root.containers()
    r = root.tbx("create", name, "--arch", "ppc64le", "--image", arm_local, "-y")
    assert r.rc == 1 and "ppc64le" in r.err and "aarch64" in r.err and "conflicting" in r.err
    assert root.containers() == before


def test_supported_distro_suffix_alias_reaches_the_canonical_local_name(root, arm_local, cleanup):
    """fedora-toolbox:44-aarch64 is understood as (fedora-toolbox:44, aarch64), stored as -arm64."""
    cleanup(root, "fedora-toolbox-44-arm64")
    root.rm_containers("fedora-toolbox-44-arm64")
    assert root.podman("tag", arm_local, "localhost/fedora-toolbox:44-arm64").rc == 0
    try:
        r = root.tbx("create", "--image", "localhost/fedora-toolbox:44-aarch64", "-y")
        assert r.rc == 0, r.text
        assert arch_of(root, "fedora-toolbox-44-arm64") == "aarch64"
        r = root.tbx("create", "x-tbxt", "--arch", "x86_64", "--image", "localhost/fedora-toolbox:44-aarch64", "-y")
        assert r.rc == 1 and "conflicting" in r.err
    finally:
        root.rm_containers("fedora-toolbox-44-arm64")
        root.podman("rmi", "localhost/fedora-toolbox:44-arm64")


def test_unsupported_image_whose_tag_merely_ends_in_arm64_stays_native(root, host, cleanup):
    assert root.tbx("image", "pull", host.index_ref, "--arch", "x86_64", "--no-tls-verify").rc == 0
    img = "localhost/tbxt-other:1-arm64"
    assert root.podman("tag", host.index_ref, img).rc == 0  # an amd64 image
    cleanup(root, "tbxt-other-1-arm64")
    try:
        r = root.tbx("create", "--image", img, "-y")
        assert r.rc == 0, r.text
        assert arch_of(root, "tbxt-other-1-arm64") == "x86_64"
    finally:
        root.rm_containers("tbxt-other-1-arm64")
        root.podman("rmi", img)


def test_config_default_image_and_distro_release_reach_the_same_container(root, host, root_config, cleanup):
    cleanup(root, "debian-12-arm64")
    root.rm_containers("debian-12-arm64")
    root_config.write_text(f'default_image = "{host.index_ref}"\n[images]\n"debian:12" = "{host.index_ref}"\n')
    env = {}
    r = root.tbx("create", "--arch", "aarch64", "-y", "--no-tls-verify", env=env)  # no --image: the config's
    assert r.rc == 0, r.text
    assert "debian-12-arm64" in r.out
    r = root.tbx("run", "--distro", "debian", "--release", "12", "--arch", "aarch64", "uname", "-m", env=env)
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text
    root_config.write_text('default_image = 12\n')
    r = root.tbx("create", "--arch", "aarch64", "-y", env=env)
    assert r.rc == 1 and "config.toml" in r.err and "default_image" in r.err
