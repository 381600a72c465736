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
    ("{reg}/tbx-test/debian@sha256:" + "b" * 40, "sha256 digest has 64 hex digits, not 40"),
    ("{reg}/tbx-test/debian:12@sha256:" + "c" * 64, "has no manifest sha256:cccc"),
    ("{reg}/tbx-test/debian@sha256:" + "a" * 64, "has no manifest sha256:aaaa"),
])
def test_registry_errors_have_a_reason_and_a_fix(root, host, ref, expect):
    r = root.tbx("image", "inspect", ref.format(reg=host["TBX_TEST_REGISTRY"]), "--arch", "arm64", "--no-tls-verify")
    assert r.rc == 1
    assert expect in r.err and "Fix:" in r.err
    assert "not supported" not in r.err and "Traceback" not in r.text


def test_a_registry_that_never_answers_tls_times_out_with_a_fix(root):
    """A port that accepts connections but never speaks: skopeo's TLS handshake times out."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        r = root.tbx("image", "inspect", f"127.0.0.1:{srv.getsockname()[1]}/x:1", "--arch", "arm64", timeout=120)
    finally:
        srv.close()
    assert r.rc == 1 and "cannot be reached" in r.err and "Fix:" in r.err, r.text


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


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sighup"])
def test_ctrl_c_during_a_pull_leaves_no_image_or_tag(root, host, fresh, how):
    """Blobs come through a throttling proxy; a terminal's Ctrl-C (SIGINT to the whole process
    group) arrives mid-transfer. Nothing new may be left under any name."""
    import os
    import signal
    import subprocess
    import time

    from .conftest import TBX
    from .slowproxy import SlowRegistryProxy

    # No copy of the arm64 image under any name, so every blob must come through the proxy.
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--override-arch", "arm64",
                          f"docker://{host.index_ref}"], capture_output=True, text=True, check=True).stdout
    digest = next(m["digest"] for m in json.loads(raw)["manifests"] if m["platform"]["architecture"] == "arm64")
    manifest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                               f"docker://{host.index_ref.rsplit(':', 1)[0]}@{digest}"],
                              capture_output=True, text=True, check=True).stdout
    image_id = json.loads(manifest)["config"]["digest"].split(":", 1)[1]
    root.podman("rmi", "-f", "--ignore", image_id)
    before = root.images_state()
    with SlowRegistryProxy(host["TBX_TEST_REGISTRY"]) as proxy:
        ref = f"{proxy.address}/tbx-test/debian:12"
        proc = subprocess.Popen([TBX, "image", "pull", ref, "--arch", "arm64", "--no-tls-verify"], env=root.env,
                                cwd="/root", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        while proxy.blob_bytes < 256 * 1024 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None and proxy.blob_bytes >= 256 * 1024, "the pull should be mid-transfer"
        if how == "ctrl-c":  # a terminal's Ctrl-C: the whole process group
            os.killpg(proc.pid, signal.SIGINT)
        else:  # kill(1) or a closed terminal: tbx alone
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGHUP)
        out, err = proc.communicate(timeout=60)
    want = {"ctrl-c": 130, "sigterm": 128 + signal.SIGTERM, "sighup": 128 + signal.SIGHUP}[how]
    assert proc.returncode == want, (proc.returncode, err)
    assert "Traceback" not in err
    assert root.images_state() == before
    leftover = subprocess.run(["pgrep", "-f", f"skopeo copy.*{proxy.address}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
