"""pull's clean-up: a failed pull removes only its own private name."""

from __future__ import annotations

import pytest

from toolbx_arch import arch as archmod
from toolbx_arch import images, runner, skopeo
from toolbx_arch.errors import TbxError

from .fakes import FakeRunner, done

ARM = archmod.resolve("aarch64")


# --- pull's clean-up ------------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [KeyboardInterrupt, TbxError])
def test_a_failed_pull_removes_only_its_own_private_name(failure, monkeypatch):
    info = skopeo.ImageInfo(reference="reg.example.org/x:1", pinned="reg.example.org/x@sha256:" + "a" * 64,
                            digest="sha256:" + "a" * 64, os="linux", architecture="arm64", variant="v8", created=None,
                            layers=1, size=1, multi_arch=True, index_digest=None)
    fake = FakeRunner([(["podman", "image", "exists"], done(rc=1))])  # gone after the one rmi
    monkeypatch.setattr(runner, "run", fake)
    monkeypatch.setattr(runner, "require", lambda name: name)

    def copy(info, a, dest, **kw):
        assert dest.startswith(images.PULL_REPO + ":")
        raise failure("interrupted") if failure is TbxError else failure()

    monkeypatch.setattr(skopeo, "copy", copy)
    with pytest.raises(failure):
        images.pull("reg.example.org/x:1", ARM, info=info)
    rmis = fake.ran("podman", "rmi")
    assert len(rmis) == 1 and rmis[0][2:] == ["--ignore", rmis[0][-1]] and rmis[0][-1].startswith(images.PULL_REPO)
    assert not fake.ran("podman", "tag") and not any("--force" in c for c in fake.calls)


def test_an_interrupted_pull_removes_its_name_until_it_is_gone(monkeypatch):
    """A `podman rmi` cut short by the interrupt may leave the name: it is removed again."""
    info = skopeo.ImageInfo(reference="reg.example.org/x:1", pinned="reg.example.org/x@sha256:" + "a" * 64,
                            digest="sha256:" + "a" * 64, os="linux", architecture="arm64", variant="v8", created=None,
                            layers=1, size=1, multi_arch=True, index_digest=None)
    answers = iter([done(rc=0), done(rc=1)])  # still there after the first rmi, gone after the second
    fake = FakeRunner([(["podman", "image", "exists"], lambda argv: next(answers))])
    monkeypatch.setattr(runner, "run", fake)
    monkeypatch.setattr(runner, "require", lambda name: name)
    monkeypatch.setattr(skopeo, "copy", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        images.pull("reg.example.org/x:1", ARM, info=info)
    assert len(fake.ran("podman", "rmi")) == 2
