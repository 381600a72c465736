"""Local images: where tbx stores an image for an arch, pulling it there with verification, and
reading back what podman recorded. Local look-ups use the podman CLI (fast, no API service)."""

from __future__ import annotations

import json
import time
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


# --- which images tbx stored (so that rmi removes only those) -------------------------------

def index_path() -> str:
    """``images.json`` in tbx's data directory (``paths.data_dir``; root: /var/lib/tbx): local
    image name -> image ID, for every name a tbx pull stored."""
    import os

    from . import paths

    return os.path.join(paths.data_dir(), "images.json")


def owned() -> dict[str, str]:
    try:
        with open(index_path(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _update_index(change) -> None:
    """Apply ``change(dict)`` to the index under a lock, and replace the file atomically."""
    import os

    path = index_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path + ".lock", "a") as lock:
        from .status import lock_exclusive

        lock_exclusive(lock.fileno(), f"the images index ({path})")
        data = owned()
        change(data)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)


def record(name: str, image_id: str) -> None:
    _update_index(lambda d: d.__setitem__(name, image_id))


def forget(*names: str) -> None:
    _update_index(lambda d: [d.pop(n, None) for n in names])


def check_local_arch(img: LocalImage, a: Arch) -> None:
    """An image stored locally must really be of the arch it is used for."""
    if img.architecture != a.oci_arch:
        found = archmod.lookup(img.architecture)
        raise TbxError(f"image {img.name} is {img.os}/{img.architecture}"
                       f"{f' ({found.name})' if found else ''}, not linux/{a.oci_arch} ({a.name})",
                       fix=f"Use --arch {found.name if found else img.architecture}, or pull the {a.name} "
                           f"image: tbx image pull REF --arch {a.name}")


PULL_REPO = "localhost/tbx-pull"  # where a pull lands first, under a name only that pull uses


def pull(ref: str, a: Arch, *, authfile: str | None = None, tls_verify: bool | None = None,
         on_line=None, on_bytes=None,
         info: skopeo.ImageInfo | None = None) -> tuple[str, LocalImage, skopeo.ImageInfo]:
    """Copy ``ref`` for ``a`` into containers-storage under its arch-suffixed name.

    The copy lands under a name of this pull's own (``localhost/tbx-pull/<random>``), is verified
    there (the registry's answer before, what podman recorded after), and only then gets the
    arch-suffixed name. Whatever happens, the private name is removed again, and nothing else:
    an image that a parallel create stored under the same name, or its containers, are never
    touched. Progress (see ``skopeo.copy``): ``on_bytes(done, total)`` as the layers arrive, or
    ``on_line`` with the image's size, then one line per layer. Returns (name, image, info).
    """
    import uuid

    runner.require("skopeo")
    dest = naming.local_image_name(ref, a)
    shown = bool(on_line or on_bytes)  # the layer sizes cost one more registry request
    info = info or skopeo.inspect(ref, a, authfile=authfile, tls_verify=tls_verify, sizes=shown)
    if on_line:
        on_line(f"{info.pinned}: {info.layers} layer{'s' if info.layers != 1 else ''}, "
                f"{info.size / 1e6:.1f} MB compressed")
    mine = f"{PULL_REPO}:{uuid.uuid4().hex[:16]}"
    img = None
    before: str | None = None  # what `dest` named just before this pull named it ("" for nothing)
    ok = False
    try:
        skopeo.copy(info, a, mine, authfile=authfile, tls_verify=tls_verify, on_line=on_line,
                    on_bytes=(lambda done: on_bytes(done, info.size)) if on_bytes else None)
        img = inspect_local(mine)
        if img is None:
            raise TbxError(f"skopeo reported success but {mine} is not in local storage", exit_code=EXIT_ENGINE)
        check_local_arch(img, a)
        prior = inspect_local(dest)
        before = prior.id if prior else ""
        r = runner.run(["podman", "tag", img.id, dest], timeout=60)
        if r.returncode != 0:
            raise TbxError(f"podman could not name the pulled image {dest}", details=r.stderr.strip()[-600:],
                           exit_code=EXIT_ENGINE)
        img.name = dest
        img.names = [n for n in img.names if n != mine] + [dest]
        record(dest, img.id)
        # The private name goes inside the try: an interruption while it is removed undoes the
        # whole pull, so the caller never misses a name this pull stored.
        runner.run(["podman", "rmi", "--ignore", mine], timeout=120)
        ok = True
        return dest, img, info
    finally:
        if not ok and img is not None and before is not None and before != img.id:
            # Interrupted after naming: give the name back to what it named before this pull.
            now = inspect_local(dest)
            if now is not None and now.id == img.id:
                runner.run(["podman", "untag", img.id, dest], timeout=60)
                if before:
                    runner.run(["podman", "tag", before, dest], timeout=60)
                else:
                    forget(dest)
        if not ok:  # only this pull's own name: an image with other names (or containers) stays
            # (an interrupted `podman rmi` of it may leave storage busy for a moment: try again
            # until the name is gone)
            for attempt in range(5):
                runner.run(["podman", "rmi", "--ignore", mine], timeout=120)
                if runner.run(["podman", "image", "exists", mine], timeout=60).returncode != 0:
                    break
                time.sleep(0.2 * (attempt + 1))
