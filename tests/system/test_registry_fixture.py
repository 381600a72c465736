"""Issue 3: the provisioned registries serve what the other system tests rely on."""

import json
import subprocess

from .markers import read_marker


def skopeo_json(*args):
    r = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_two_arch_index_selects_a_different_manifest_per_arch(host):
    raw = skopeo_json("inspect", "--raw", "--tls-verify=false", f"docker://{host.index_ref}")
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in raw["manifests"]}
    assert set(by_arch) == {"amd64", "arm64"}
    assert by_arch["amd64"] != by_arch["arm64"]
    seen = {}
    for arch in ("arm64", "amd64"):
        info = skopeo_json("inspect", "--tls-verify=false", "--override-arch", arch, f"docker://{host.index_ref}")
        assert info["Architecture"] == arch
        seen[arch] = info["Layers"]
        # The platform manifest skopeo selected is the index's entry for that arch.
        pinned = skopeo_json("inspect", "--tls-verify=false", "--override-arch", arch,
                             f"docker://{host.index_ref.rsplit(':', 1)[0]}@{by_arch[arch]}")
        assert pinned["Layers"] == info["Layers"]
        assert pinned["Digest"] == by_arch[arch]
    assert seen["arm64"] != seen["amd64"]


def test_each_platform_image_carries_its_marker(host):
    for arch in ("arm64", "amd64"):
        marker = read_marker(f"docker://{host.index_ref}",
                             extra=["--src-tls-verify=false", "--override-arch", arch])
        assert marker == f"linux/{arch}"


def test_single_arch_image_is_amd64_only(host):
    raw = skopeo_json("inspect", "--raw", "--tls-verify=false", f"docker://{host.single_ref}")
    assert "manifests" not in raw
    info = skopeo_json("inspect", "--tls-verify=false", "--override-arch", "arm64", f"docker://{host.single_ref}")
    assert info["Architecture"] == "amd64"  # skopeo hands back amd64 whatever was asked


def test_auth_registry_requires_credentials(host):
    r = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host.auth_ref}"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "unauthorized" in r.stderr.lower()
    ok = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile",
                         host["TBX_TEST_AUTHFILE"], f"docker://{host.auth_ref}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
