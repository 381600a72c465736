"""``tbx image inspect`` and ``tbx image pull``: what a registry offers for an arch, and copying it."""

from __future__ import annotations

from .. import arch as archmod
from .. import images, output, progress, skopeo
from ..config import load
from ..shortnames import qualify


def _arch(name: str | None) -> archmod.Arch:
    if name is None:  # an empty --arch is an error, not a default
        name = load().default_arch or archmod.host().name
    return archmod.resolve(name)


def inspect(ref: str, *, arch: str | None, authfile: str | None, tls_verify: bool | None, json_out: bool) -> int:
    a = _arch(arch)
    ref = qualify(ref)
    info = skopeo.inspect(ref, a, authfile=authfile, tls_verify=tls_verify)
    if json_out:
        output.print_json({"schema": output.JSON_SCHEMA, **info.as_dict()})
        return 0
    d = info.as_dict()
    rows = [("reference", info.reference), ("platform", d["platform"]), ("digest", info.digest),
            ("pinned", info.pinned), ("created", info.created or "?"), ("layers", str(info.layers)),
            ("size", f"{output.human_size(info.size)} ({info.size} bytes, compressed)"),
            ("multi-arch", f"yes, index {info.index_digest}" if info.multi_arch else "no (single-architecture image)")]
    if info.platforms:
        rows.append(("platforms", ", ".join(str(p) for p in info.platforms)))
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(w)}  {v}")
    return 0


def pull(ref: str, *, arch: str | None, authfile: str | None, tls_verify: bool | None) -> int:
    a = _arch(arch)
    ref = qualify(ref)
    with progress.pull(f"Pulling {ref} for {a.name}") as shown:
        name, img, info = images.pull(ref, a, authfile=authfile, tls_verify=tls_verify, **shown)
    print(f"{name}  {info.os}/{info.architecture}  {info.digest}  {output.human_size(img.size)}")
    return 0
