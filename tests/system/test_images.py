"""Issue 5: foreign-arch images: inspect, pull with verification, arch-suffixed storage, rmi."""

import json

import pytest

from .markers import read_marker


def local_name(ref: str, suffix: str | None) -> str:
    return f"{ref}-{suffix}" if suffix else ref


@pytest.fixture
def fresh(root, host):
    """No local copies of the test images before and after the test (rootful storage)."""
    names = [local_name(host.index_ref, s) for s in (None, "arm64")] + [local_name(host.auth_ref, "arm64")]

    def clear():
        for n in names:
            root.podman("rmi", "-f", n)
    clear()
    yield
    clear()


def test_pull_two_arch_index_for_each_arch_stores_each_platform(root, host, fresh):
    for arch, oci in (("arm64", "arm64"), ("amd64", None)):
        r = root.tbx("image", "pull", host.index_ref, "--arch", arch, "--no-tls-verify")
        assert r.rc == 0, r.text
    arm = local_name(host.index_ref, "arm64")
    assert read_marker(f"containers-storage:{arm}") == "linux/arm64"
    assert read_marker(f"containers-storage:{host.index_ref}") == "linux/amd64"
    insp = json.loads(root.podman("image", "inspect", arm).out)[0]
    assert insp["Architecture"] == "arm64"
    assert root.image_id(arm) != root.image_id(host.index_ref)


def test_foreign_pull_never_touches_the_native_tag(root, host, fresh):
    assert root.tbx("image", "pull", host.index_ref, "--arch", "x86_64", "--no-tls-verify").rc == 0
    native_id = root.image_id(host.index_ref)
    assert native_id
    r = root.tbx("image", "pull", host.index_ref, "--arch", "aarch64", "--no-tls-verify")
    assert r.rc == 0, r.text
    assert root.image_id(host.index_ref) == native_id
    assert "arm64" in r.out


def test_foreign_pull_does_not_create_the_native_tag(root, host, fresh):
    assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    assert root.image_id(host.index_ref) is None


def test_single_arch_image_for_another_arch_is_refused_and_stores_nothing(root, host, fresh):
    before = root.images_state()
    r = root.tbx("image", "pull", host.single_ref, "--arch", "arm64", "--no-tls-verify")
    assert r.rc == 1
    assert "single-architecture linux/amd64" in r.err and "Traceback" not in r.text
    assert root.images_state() == before


def test_authenticated_registry_needs_the_authfile(root, host, fresh):
    r = root.tbx("image", "pull", host.auth_ref, "--arch", "arm64", "--no-tls-verify")
    assert r.rc == 1 and "requires authentication" in r.err and "Fix:" in r.err
    r = root.tbx("image", "pull", host.auth_ref, "--arch", "arm64", "--no-tls-verify",
                 "--authfile", host["TBX_TEST_AUTHFILE"])
    assert r.rc == 0, r.text
    assert read_marker(f"containers-storage:{local_name(host.auth_ref, 'arm64')}") == "linux/arm64"


def test_inspect_reports_the_selected_platform(root, host):
    digests = {}
    for arch in ("arm64", "amd64"):
        r = root.tbx("image", "inspect", host.index_ref, "--arch", arch, "--no-tls-verify", "--json")
        assert r.rc == 0, r.text
        d = json.loads(r.out)
        assert d["architecture"] == arch and d["os"] == "linux" and d["multi_arch"] is True
        assert {p["architecture"] for p in d["platforms"]} == {"amd64", "arm64"}
        assert d["layers"] == 2 and d["size"] > 1_000_000
        digests[arch] = d["digest"]
    assert digests["arm64"] != digests["amd64"]


def test_inspect_of_an_arch_the_index_lacks_lists_what_it_offers(root, host):
    r = root.tbx("image", "inspect", host.index_ref, "--arch", "s390x", "--no-tls-verify")
    assert r.rc == 1
    assert "has no linux/s390x image; it offers: linux/amd64, linux/arm64" in r.err


@pytest.mark.parametrize("ref,expect", [
    ("{reg}/tbx-test/debian:nope", "has no tag 'nope'"),
    ("{reg}/tbx-test/no-such-repo:1", "repository"),
    ("127.0.0.1:1/x:1", "refused the connection"),
    ("registry.invalid/x:1", "DNS"),
])
def test_registry_errors_have_a_reason_and_a_fix(root, host, ref, expect):
    r = root.tbx("image", "inspect", ref.format(reg=host["TBX_TEST_REGISTRY"]), "--arch", "arm64", "--no-tls-verify")
    assert r.rc == 1
    assert expect in r.err and "Fix:" in r.err
    assert "not supported" not in r.err and "Traceback" not in r.text


def test_tls_failure_is_reported_as_tls(root, host):
    r = root.tbx("image", "inspect", host.index_ref, "--arch", "arm64")
    assert r.rc == 1 and "TLS" in r.err and "--no-tls-verify" in r.err


def test_rmi_refuses_while_a_container_uses_the_image(root, host, fresh, name, cleanup):
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    img = local_name(host.index_ref, "arm64")
    r = root.tbx("rmi", img)
    assert r.rc == 1 and name in r.err and "--force" in r.err
    assert root.image_id(img)
    r = root.tbx("rmi", "--force", img)
    assert r.rc == 0, r.text
    assert root.image_id(img) is None and name not in root.containers()


def test_bad_credentials_are_named_as_such(root, host, tmp_path):
    import base64

    bad = tmp_path / "auth.json"
    token = base64.b64encode(b"tbxuser:wrong").decode()
    bad.write_text(json.dumps({"auths": {host["TBX_TEST_AUTH_REGISTRY"]: {"auth": token}}}))
    r = root.tbx("image", "inspect", host.auth_ref, "--arch", "arm64", "--no-tls-verify", "--authfile", str(bad))
    assert r.rc == 1 and f"rejected the credentials in {bad}" in r.err and "podman login" in r.err
