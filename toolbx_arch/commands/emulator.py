"""``tbx emulator pull|list|rm``: QEMU emulators from OCI images, per user, with no host package."""

from __future__ import annotations

from .. import emulators, output, progress
from ..config import load
from ..errors import TbxError
from ..shortnames import qualify


def pull(ref: str | None, *, authfile: str | None, tls_verify: bool | None) -> int:
    ref = ref or load().emulator_image
    if not ref:
        raise TbxError("no image named, and no emulator_image in the configuration",
                       fix="tbx emulator pull IMAGE, or set emulator_image = \"REF\" in ~/.config/tbx/config.toml")
    ref = qualify(ref)
    with progress.pull(f"Pulling the emulators of {ref}") as shown:  # a bar on a terminal, lines otherwise
        meta, refused = emulators.pull(ref, authfile=authfile, tls_verify=tls_verify, **shown)
    for why in refused:
        output.warn(f"not installed: {why}")
    arches = ", ".join(meta["arches"])
    print(f"Installed emulator {meta['name']} (QEMU {meta.get('qemu_version') or '?'}) for {arches} in {meta['path']}")
    return 0


def list_(*, json_out: bool) -> int:
    rows = emulators.installed()
    if json_out:
        output.print_json({"schema": output.JSON_SCHEMA, "emulators": [
            {"name": m["name"], "source": m.get("source"), "digest": m.get("digest"),
             "qemu_version": m.get("qemu_version"), "arches": sorted(m["arches"]), "path": m["path"]} for m in rows]})
        return 0
    output.table(None, ["NAME", "QEMU", "ARCHES", "SOURCE", "DIGEST", "PATH"],
                 [(m["name"], m.get("qemu_version") or "?", ",".join(sorted(m["arches"])), m.get("source") or "?",
                   (m.get("digest") or "?")[:19], m["path"]) for m in rows])
    return 0


def rm(names: list[str]) -> int:
    if not names:
        raise TbxError("no emulator named", fix="tbx emulator rm NAME… (see tbx emulator list)")
    for n in names:
        print(f"Removed {emulators.remove(n)}")
    return 0
