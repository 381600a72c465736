"""Issue 29 (TLS as podman does it): with no flag, registries.conf decides. The test registry
speaks plain HTTP; a registries.conf.d drop-in marks it insecure, and every pull and push then
works with no flag, local or on a node; --tls-verify forces verification and fails with the
classified message."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_build import ctx, pushed_platforms, ref  # noqa: F401 - fixtures shared with the build tests
from .test_connections import node  # noqa: F401 - the ssh node, as in the connection tests


@pytest.fixture
def insecure(host):
    """The test registry marked insecure = true in a registries.conf.d file, and nowhere else."""
    p = Path("/etc/containers/registries.conf.d/50-tbxt-insecure.conf")
    assert not p.exists()
    p.write_text(f'[[registry]]\nlocation = "{host["TBX_TEST_REGISTRY"]}"\ninsecure = true\n')
    p.chmod(0o644)
    yield host["TBX_TEST_REGISTRY"]
    p.unlink()


def test_pulls_follow_registries_conf_and_tls_verify_forces_verification(who, host, insecure):
    r = who.tbx("image", "pull", host.index_ref, "--arch", "aarch64")
    assert r.rc == 0, r.text
    r = who.tbx("image", "pull", host.index_ref, "--arch", "aarch64", "--tls-verify")
    assert r.rc == 1 and f"TLS connection to {insecure} failed" in r.err and "Fix:" in r.err, r.text
    if who.rootless:
        store = Path(who.home) / ".local" / "share" / "tbx" / "emulators"
        r = who.tbx("emulator", "pull", host["TBX_TEST_EMULATOR_REF"])
        assert r.rc == 0, r.text
        r = who.tbx("emulator", "pull", host["TBX_TEST_EMULATOR_REF"], "--tls-verify")
        assert r.rc == 1 and "TLS connection to" in r.err, r.text
        import shutil

        shutil.rmtree(store, ignore_errors=True)


def test_build_push_follows_registries_conf(who, insecure, ctx, ref):  # noqa: F811
    d = ctx("RUN uname -m > /arch")
    r = who.tbx("build", d, "--arch", "x86_64,aarch64", "--tag", ref, "--push", timeout=900)
    assert r.rc == 0, r.text
    assert pushed_platforms(ref) == {"amd64": "x86_64", "arm64": "aarch64"}


def test_a_node_pulls_and_pushes_following_registries_conf(rootless, node, insecure, ctx, ref, host):  # noqa: F811
    conn = node["TBX_TEST_NODE"]
    d = ctx("RUN uname -m > /arch")
    r = rootless.tbx("build", d, "--arch", "x86_64", "--connection", f"x86_64={conn}", "--tag", ref, "--push",
                     timeout=900)
    assert r.rc == 0, r.text
    assert pushed_platforms(ref) == {"amd64": "x86_64"}
    r = rootless.tbx("run", "--arch", "x86_64", "--connection", f"x86_64={conn}", "--image", host.index_ref,
                     "--no-sync", "--", "uname", "-m", timeout=600)
    assert (r.rc, r.out.strip()) == (0, "x86_64"), r.text
