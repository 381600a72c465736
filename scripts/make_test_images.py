#!/usr/bin/env python3
"""Build an OCI image layout holding the tbx test images, offline and deterministically.

For each ``ARCH=ROOTFS.tar`` it writes a single-platform image whose layers are the root
filesystem and a tiny second layer with ``/platform-marker`` (``linux/ARCH``), then an image
index over all of them. Tags in the layout: one per arch (``amd64``, ``arm64``) and ``index``.

Which manifest a registry client selected can then be proven without running anything: read
``/platform-marker`` back from the copied image (as in Dalec's platform-marker check).

Only the standard library is used: provisioning runs this before tbx is installed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
CREATED = "2026-01-01T00:00:00Z"
VARIANTS = {"arm64": "v8", "arm": "v7"}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put_bytes(self, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blobs / digest
        if not path.exists():
            path.write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def put_json(self, obj: dict, media_type: str) -> dict:
        return self.put_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), media_type)

    def put_layer(self, tar_path: Path, cache_key: str) -> tuple[dict, str]:
        """gzip a layer tarball into the layout; returns (descriptor, diff_id). Cached by key."""
        memo = self.root / f"layer-{cache_key}.json"
        if memo.exists():
            info = json.loads(memo.read_text())
            if (self.blobs / info["desc"]["digest"].split(":", 1)[1]).exists():
                return info["desc"], info["diff_id"]
        tmp = self.blobs / f".tmp-{cache_key}"
        raw_hash = hashlib.sha256()
        with open(tar_path, "rb") as src, open(tmp, "wb") as out:
            with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=1) as gz:
                while chunk := src.read(1 << 20):
                    raw_hash.update(chunk)
                    gz.write(chunk)
        gz_hash = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                gz_hash.update(chunk)
        digest = gz_hash.hexdigest()
        os.replace(tmp, self.blobs / digest)
        desc = {"mediaType": OCI_LAYER_GZ, "digest": f"sha256:{digest}", "size": (self.blobs / digest).stat().st_size}
        diff_id = f"sha256:{raw_hash.hexdigest()}"
        memo.write_text(json.dumps({"desc": desc, "diff_id": diff_id}))
        return desc, diff_id


def marker_tar(platform: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        data = f"{platform}\n".encode()
        info = tarfile.TarInfo("platform-marker")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_image(layout: Layout, arch: str, rootfs: Path | None) -> dict:
    """An image of the root filesystem plus the marker layer; only the marker when rootfs is None."""
    base_layers: list[tuple[dict, str]] = []
    if rootfs is not None:
        base_layers.append(layout.put_layer(rootfs, f"{arch}-{rootfs.stat().st_size}-{int(rootfs.stat().st_mtime)}"))
    mtar = marker_tar(f"linux/{arch}")
    mgz = io.BytesIO()
    with gzip.GzipFile(fileobj=mgz, mode="wb", mtime=0) as gz:
        gz.write(mtar)
    marker = layout.put_bytes(mgz.getvalue(), OCI_LAYER_GZ)
    platform = {"architecture": arch, "os": "linux"}
    if arch in VARIANTS:
        platform["variant"] = VARIANTS[arch]
    config = {
        **platform,
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": ["/bin/bash"], "Labels": {"org.opencontainers.image.title": "tbx test image"}},
        "rootfs": {"type": "layers",
                   "diff_ids": [d for _, d in base_layers] + [f"sha256:{hashlib.sha256(mtar).hexdigest()}"]},
        "history": [{"created": CREATED, "created_by": "debootstrap minbase + sudo"} for _ in base_layers]
                   + [{"created": CREATED, "created_by": "platform marker"}],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": layout.put_json(config, OCI_CONFIG),
        "layers": [b for b, _ in base_layers] + [marker],
    }
    desc = layout.put_json(manifest, OCI_MANIFEST)
    desc["platform"] = platform
    return desc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--rootfs", action="append", required=True, metavar="ARCH=TAR")
    ap.add_argument("--marker-only", action="append", default=[], metavar="ARCH",
                    help="also a single-arch image holding only the marker (tag ARCH-marker)")
    args = ap.parse_args()
    layout = Layout(args.out)
    refs = []
    platforms = []
    for item in args.rootfs:
        arch, _, tar_path = item.partition("=")
        desc = build_image(layout, arch, Path(tar_path))
        platforms.append(desc)
        refs.append({**{k: v for k, v in desc.items() if k != "platform"},
                     "annotations": {"org.opencontainers.image.ref.name": arch}})
    for arch in args.marker_only:
        desc = build_image(layout, arch, None)
        refs.append({**{k: v for k, v in desc.items() if k != "platform"},
                     "annotations": {"org.opencontainers.image.ref.name": f"{arch}-marker"}})
    index = layout.put_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": platforms}, OCI_INDEX)
    refs.append({**index, "annotations": {"org.opencontainers.image.ref.name": "index"}})
    tmp = args.out / "index.json.tmp"
    tmp.write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": refs}, indent=1))
    os.replace(tmp, args.out / "index.json")


if __name__ == "__main__":
    main()
