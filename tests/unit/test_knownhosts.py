"""known_hosts lines as OpenSSH reads them (knownhosts): patterns, ports, hashes, markers."""

from __future__ import annotations

import pytest

from toolbx_arch import knownhosts

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExampleKeyEx"


def hashed(name: str) -> str:
    import base64
    import hashlib
    import hmac

    salt = b"0123456789abcdef0123"
    return "|1|%s|%s" % (base64.b64encode(salt).decode(),
                         base64.b64encode(hmac.new(salt, name.encode(), hashlib.sha1).digest()).decode())


@pytest.mark.parametrize("line,known", [
    (f"[box.example.org]:2222 {KEY}", True),
    (f"box.example.org {KEY}", False),                        # port 22's entry is another host key
    (f"[BOX.example.org]:2222 {KEY}", True),                  # host names are case-insensitive
    (f"other,[box.example.org]:2222 {KEY}", True),
    (f"[*.example.org]:2222 {KEY}", True),
    (f"[*.example.org]:2222,![box.example.org]:2222 {KEY}", False),
    (f"@revoked [box.example.org]:2222 {KEY}", False),
    (f"@cert-authority [*.example.org]:2222 {KEY}", True),
    (f"# [box.example.org]:2222 {KEY}", False),
    ("[box.example.org]:2222", False),                        # no key
    ("", False),
])
def test_known_hosts_lines(tmp_path, line, known):
    f = tmp_path / "known_hosts"
    f.write_text(line + "\n")
    assert bool(knownhosts.lines_for("box.example.org", 2222, [f])) is known


def test_hashed_known_hosts_entries_match(tmp_path):
    f = tmp_path / "known_hosts"
    f.write_text(f"{hashed('[other]:2222')} {KEY}\n")
    assert not bool(knownhosts.lines_for("box.example.org", 2222, [f]))
    f.write_text(f"{hashed('[box.example.org]:2222')} {KEY}\n")
    assert bool(knownhosts.lines_for("box.example.org", 2222, [f]))


