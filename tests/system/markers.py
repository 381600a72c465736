"""Read /platform-marker out of an image without running anything (no emulation involved):
copy the image to a plain directory with skopeo and look through its layer tarballs."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path


def _marker_in_layer(blob: bytes) -> str | None:
    data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                if m.name.lstrip("./") == "platform-marker":
                    return tar.extractfile(m).read().decode().strip()
    except tarfile.TarError:
        return None
    return None


def read_marker(source: str, argv_prefix: list[str] | None = None, extra: list[str] | None = None) -> str:
    """``source`` is a skopeo source (containers-storage:NAME, docker://REF …)."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([*(argv_prefix or []), "skopeo", "copy", "-q", *(extra or []), source, f"dir:{d}"],
                       check=True, capture_output=True)
        manifest = json.loads((Path(d) / "manifest.json").read_text())
        found = None
        for layer in manifest["layers"]:
            blob = (Path(d) / layer["digest"].split(":", 1)[1]).read_bytes()
            found = _marker_in_layer(blob) or found
        assert found is not None, f"no /platform-marker in {source}"
        return found
