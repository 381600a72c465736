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


PULL_REPO = "localhost/tbx-pull"  # where a pull lands first, under a name only that pull uses


def pull(ref: str, a: Arch, *, authfile: str | None = None, tls_verify: bool = True,
         on_line=None, info: skopeo.ImageInfo | None = None) -> tuple[str, LocalImage, skopeo.ImageInfo]:
    """Copy ``ref`` for ``a`` into containers-storage under its arch-suffixed name.

    The copy lands under a name of this pull's own (``localhost/tbx-pull/<random>``), is verified
    there (the registry's answer before, what podman recorded after), and only then gets the
    arch-suffixed name. Whatever happens, the private name is removed again, and nothing else:
    an image that a parallel create stored under the same name, or its containers, are never
    touched. Returns (name, image, info).
    """
    import uuid

    runner.require("skopeo")
    dest = naming.local_image_name(ref, a)
    info = info or skopeo.inspect(ref, a, authfile=authfile, tls_verify=tls_verify, sizes=False)
    mine = f"{PULL_REPO}:{uuid.uuid4().hex[:16]}"
    try:
        skopeo.copy(info, a, mine, authfile=authfile, tls_verify=tls_verify, on_line=on_line)
        img = inspect_local(mine)
        if img is None:
            raise TbxError(f"skopeo reported success but {mine} is not in local storage", exit_code=EXIT_ENGINE)
        check_local_arch(img, a)
        r = runner.run(["podman", "tag", img.id, dest], timeout=60)
        if r.returncode != 0:
            raise TbxError(f"podman could not name the pulled image {dest}", details=r.stderr.strip()[-600:],
                           exit_code=EXIT_ENGINE)
        img.name = dest
        img.names = [n for n in img.names if n != mine] + [dest]
        return dest, img, info
    finally:
        # Only this pull's own name: an image that also has other names (or containers) stays.
        runner.run(["podman", "rmi", "--ignore", mine], timeout=120)
