from __future__ import annotations

from .. import naming, podman_client
from ..errors import EXIT_ENGINE, TbxError
from .list import collect
from .rm import remove_container


def rmi(names: list[str], *, force: bool, all_: bool) -> int:
    if not names and not all_:
        raise TbxError("no image named", fix="tbx rmi IMAGE…, or tbx rmi --all")
    for n in names:
        naming.validate_image_name(n)
    import podman.errors

    with podman_client.engine() as client:
        if all_:
            names = [r["image"] for r in collect(client, containers=False, images=True)["images"]]
        ctrs = client.containers.list(all=True)
        for n in names:
            try:
                img = client.images.get(n)
            except podman.errors.ImageNotFound:
                raise TbxError(f"image {n} does not exist", fix="See 'tbx list --images'") from None
            users = [c for c in ctrs if c.attrs.get("ImageID", c.attrs.get("Image")) == img.id
                     or (c.labels or {}).get(naming.LABEL_IMAGE) == n]
            if users and not force:
                raise TbxError(f"image {n} is used by container{'s' if len(users) > 1 else ''} "
                               f"{', '.join(c.name for c in users)}",
                               fix=f"Remove {'them' if len(users) > 1 else 'it'} first (tbx rm), or tbx rmi --force {n}")
            for c in users:
                if (c.labels or {}).get(naming.LABEL_MANAGED) != "true":
                    raise TbxError(f"image {n} is used by {c.name}, which tbx did not create",
                                   fix=f"podman rm {c.name}")
                remove_container(c, force=True)
            try:
                client.images.remove(n, force=force)
            except podman.errors.APIError as e:
                raise TbxError(f"could not remove image {n}", details=str(e), exit_code=EXIT_ENGINE) from e
            print(n)
    return 0
