from __future__ import annotations

from .. import arch as archmod
from .. import naming, output, podman_client


def _tbx_image(img: dict, used: set[str]) -> tuple[str, str] | None:
    """(name, arch) for an image tbx stored or uses: an arch-suffixed tag whose suffix is the
    image's recorded arch, or any image a tbx container uses."""
    arch = img.get("Architecture", "")
    for tag in img.get("RepoTags") or []:
        t = tag.rsplit(":", 1)[-1]
        _, a = naming.split_arch_suffix(t)
        if (a is not None and a.oci_arch == arch) or tag in used or img.get("Id") in used:
            return tag, arch
    return None


def collect(client, *, containers: bool = True, images: bool = True, arch: str | None = None) -> dict:
    """tbx containers and images, through a connected podman-py ``client``."""
    a = archmod.resolve(arch) if arch is not None else None
    out: dict = {}
    ctrs = client.containers.list(all=True, filters={"label": naming.MANAGED_FILTER})
    rows = []
    used: set[str] = set()
    for c in ctrs:
        labels = c.labels or {}
        used.add(labels.get(naming.LABEL_IMAGE, ""))
        if a and labels.get(naming.LABEL_ARCH) != a.name:
            continue
        rows.append({"name": c.name, "arch": labels.get(naming.LABEL_ARCH), "oci_arch": labels.get(naming.LABEL_OCI_ARCH),
                     "image": labels.get(naming.LABEL_IMAGE) or c.attrs.get("Image"), "status": podman_client.state_of(c),
                     "created": c.attrs.get("CreatedAt") or c.attrs.get("Created"), "id": c.id})
    if containers:
        out["containers"] = sorted(rows, key=lambda r: r["name"])
    if images:
        imgs = []
        for img in client.images.list():
            attrs = img.attrs
            if "Architecture" not in attrs:
                attrs = img.inspect() if hasattr(img, "inspect") else client.images.get(img.id).attrs
            hit = _tbx_image(attrs, used)
            if hit is None:
                continue
            name, oci = hit
            ia = archmod.lookup(oci)
            if a and ia != a:
                continue
            imgs.append({"image": name, "arch": ia.name if ia else oci, "oci_arch": oci,
                         "size": attrs.get("Size"), "id": attrs.get("Id", img.id)})
        out["images"] = sorted(imgs, key=lambda r: r["image"])
    return out


def list_(*, containers: bool, images: bool, arch: str | None, json_out: bool) -> int:
    if not containers and not images:
        containers = images = True
    with podman_client.engine() as client:
        data = collect(client, containers=containers, images=images, arch=arch)
    if json_out:
        output.print_json(data)
        return 0
    if "containers" in data:
        output.table("Containers" if images else None, ["NAME", "ARCH", "IMAGE", "STATUS", "CREATED"],
                     [(r["name"], r["arch"], r["image"], r["status"], str(r["created"])[:19]) for r in data["containers"]])
    if "images" in data:
        if containers:
            print()
        output.table("Images" if containers else None, ["IMAGE", "ARCH", "SIZE"],
                     [(r["image"], r["arch"], output.human_size(r["size"])) for r in data["images"]])
    return 0
