"""Dynamic completion values: tbx container and image names (fast: podman CLI, no API socket)."""

from __future__ import annotations

from . import runner
from .naming import MANAGED_FILTER


def container_names() -> list[str]:
    if runner.which("podman") is None:
        return []
    r = runner.run(["podman", "ps", "-a", "--filter", f"label={MANAGED_FILTER}", "--format", "{{.Names}}"],
                   timeout=10)
    return r.stdout.split() if r.returncode == 0 else []


def image_names() -> list[str]:
    if runner.which("podman") is None:
        return []
    r = runner.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=10)
    return [n for n in r.stdout.split() if not n.startswith("<none>")] if r.returncode == 0 else []
