"""skopeo's error classification, with a fake runner."""

from __future__ import annotations

import pytest

from toolbx_arch import naming, runner, skopeo

from .fakes import FakeRunner, done


# --- skopeo: errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("stderr,expect", [
    ('time="x" level=fatal msg="… dial tcp: lookup reg.invalid: no such host"', "could not be found"),
    ("connect: connection refused", "refused the connection"),
    ("net/http: TLS handshake timeout", "cannot be reached"),
    ("x509: certificate signed by unknown authority", "TLS connection"),
    ("unauthorized: authentication required", "requires authentication"),
    ("manifest unknown: manifest unknown", "has no manifest sha256:"),
    ("something nobody has seen before", "skopeo failed"),
])
def test_every_skopeo_failure_has_a_reason_and_a_fix(stderr, expect, monkeypatch):
    ref = naming.normalize("reg.example.org/x@sha256:" + "a" * 64)
    e = skopeo.classify(stderr, ref, None)
    assert expect in e.message and e.fix


def test_an_unknown_tag_lists_the_tags_the_repository_has(monkeypatch):
    fake = FakeRunner([(["skopeo", "list-tags"], done(out='{"Tags": ["12", "13"]}'))])
    monkeypatch.setattr(runner, "run", fake)
    e = skopeo.classify("manifest unknown", naming.normalize("reg.example.org/x:14"), None)
    assert "has no tag '14'" in e.message and "12, 13" in e.details and e.fix
