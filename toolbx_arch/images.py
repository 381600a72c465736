"""Local images: where tbx stores an image for an arch, pulling it there with verification, and
reading back what podman recorded. Local look-ups use the podman CLI (fast, no API service)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import arch as archmod
from . import naming, runner, skopeo
from .arch import Arch
from .errors import EXIT_ENGINE, TbxError


@dataclass
class LocalImage:
    name: str
    id: str
    architecture: str
    os: str
    size: int
    names: list[str]
    labels: dict


def inspect_local(name: str) -> LocalImage | None:
    r = runner.run(["podman", "image", "inspect", "--format", "json", name], timeout=60)
    if r.returncode != 0:
        if "image not known" in r.stderr or "no such image" in r.stderr.lower():
            return None
        raise TbxError(f"podman could not inspect image {name}", details=r.stderr.strip()[-600:],
                       exit_code=EXIT_ENGINE)
    data = json.loads(r.stdout)[0]
    return LocalImage(name=name, id=data["Id"], architecture=data.get("Architecture", ""),
                      os=data.get("Os", ""), size=int(data.get("Size") or 0),
                      names=data.get("RepoTags") or [], labels=(data.get("Config") or {}).get("Labels") or {})


def remove_local(name: str, force: bool = False) -> None:
    r = runner.run(["podman", "rmi", *(["--force"] if force else []), name], timeout=120)
    if r.returncode != 0 and inspect_local(name) is not None:
        raise TbxError(f"could not remove image {name}", details=r.stderr.strip(), exit_code=EXIT_ENGINE)


def check_local_arch(img: LocalImage, a: Arch) -> None:
    """An image stored locally must really be of the arch it is used for."""
    if img.architecture != a.oci_arch:
        found = archmod.lookup(img.architecture)
        raise TbxError(f"image {img.name} is {img.os}/{img.architecture}"
                       f"{f' ({found.name})' if found else ''}, not linux/{a.oci_arch} ({a.name})",
                       fix=f"Use --arch {found.name if found else img.architecture}, or pull the {a.name} "
                           f"image: tbx image pull REF --arch {a.name}")


def pull(ref: str, a: Arch, *, authfile: str | None = None, tls_verify: bool = True,
         on_line=None, info: skopeo.ImageInfo | None = None) -> tuple[str, LocalImage, skopeo.ImageInfo]:
    """Copy ``ref`` for ``a`` into containers-storage under its arch-suffixed name.

    Verified before storing (the registry's answer) and after (what podman recorded); on any
    failure or Ctrl-C, a name this pull created is removed again. Returns (name, image, info).
    """
    from concurrent.futures import ThreadPoolExecutor

    runner.require("skopeo")
    dest = naming.local_image_name(ref, a)
    # What the name points to now (to restore it on failure) does not depend on the registry:
    # ask podman while skopeo asks the registry.
    with ThreadPoolExecutor(max_workers=1) as pool:
        before_f = pool.submit(inspect_local, dest)
        info = info or skopeo.inspect(ref, a, authfile=authfile, tls_verify=tls_verify, sizes=False)
        before = before_f.result()
    ok = False
    try:
        skopeo.copy(info, a, dest, authfile=authfile, tls_verify=tls_verify, on_line=on_line)
        img = inspect_local(dest)
        if img is None:
            raise TbxError(f"skopeo reported success but {dest} is not in local storage", exit_code=EXIT_ENGINE)
        check_local_arch(img, a)
        ok = True
        return dest, img, info
    finally:
        if not ok:
            after = inspect_local(dest)
            if after is not None and (before is None or after.id != before.id):
                runner.run(["podman", "rmi", "--force", dest], timeout=120)
                if before is not None:  # give the name back to the image it named before
                    runner.run(["podman", "tag", before.id, dest], timeout=60)
