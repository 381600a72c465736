"""OpenSSH's known_hosts format, read only: which lines give a key for a host and port (plain,
hashed ``|1|`` and wildcard patterns, negation, ``@revoked`` and ``@cert-authority`` markers), and
the keys lines hold. ``nodes`` uses it to check a node before podman's ssh client connects."""

from __future__ import annotations

import re
from pathlib import Path


def patterns(host: str, port: int) -> list[str]:
    """How known_hosts names a host: ``host`` on port 22, ``[host]:port`` otherwise."""
    return [host] if port == 22 else [f"[{host}]:{port}"]


def glob(name: str, pattern: str) -> bool:
    """OpenSSH's patterns: only * and ? are special ("[host]:port" is literal)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.IGNORECASE) is not None


def matches(field: str, names: list[str]) -> bool:
    """Does a line's host field (comma-separated patterns, or one hashed name) name one of ``names``?"""
    if field.startswith("|1|"):
        import base64
        import hashlib
        import hmac

        try:
            salt, digest = (base64.b64decode(x) for x in field[3:].split("|", 1))
        except ValueError:
            return False
        return any(hmac.new(salt, n.encode(), hashlib.sha1).digest() == digest for n in names)
    hit = False
    for pat in field.split(","):
        if pat.startswith("!"):
            if any(glob(n, pat[1:]) for n in names):
                return False
        elif any(glob(n, pat) for n in names):
            hit = True
    return hit


def lines_for(host: str, port: int, files: list[Path]) -> list[str]:
    """The lines of ``files`` that give a key for ``host``:``port``; a revoked key does not count."""
    names = patterns(host, port)
    out = []
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#") or parts[0] == "@revoked":
                continue
            if parts[0].startswith("@"):  # @cert-authority: ssh checks the host's certificate with it
                parts = parts[1:]
            if len(parts) >= 3 and matches(parts[0], names):
                out.append(line)
    return out


def keys(lines: list[str]) -> set[tuple[str, str]]:
    """(key type, base64 key) of known_hosts or ssh-keyscan lines (a marker such as @cert-authority
    makes a line count for nothing here: podman's client does not check certificates)."""
    out = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and not parts[0].startswith("@"):
            out.add((parts[1], parts[2]))
    return out
