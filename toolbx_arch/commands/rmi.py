"""``tbx rmi``: remove images that tbx stored, and only those (recorded by ``images.record``).

Every check runs before anything is deleted: a refused command changes nothing.
"""

from __future__ import annotations

import json

from .. import images, naming, output, runner
from ..errors import EXIT_ENGINE, TbxError


def _users(image_ids: set[str]) -> dict[str, list[dict]]:
    """Image ID -> the containers (podman ps rows) created from it."""
    r = runner.run(["podman", "ps", "-a", "--format", "json"], timeout=60)
    if r.returncode != 0:
        raise TbxError("podman could not list containers", details=r.stderr.strip()[-600:], exit_code=EXIT_ENGINE)
    out: dict[str, list[dict]] = {}
    for row in json.loads(r.stdout or "[]"):
        iid = row.get("ImageID") or ""
        if iid in image_ids:
            out.setdefault(iid, []).append(row)
    return out


def _stored_names(given: str, img, mine: dict[str, str]) -> list[str]:
    """The names tbx stored that ``given`` means: itself (as typed or fully qualified), or for an
    image ID every name tbx stored for that image. Another name of the same image is not one."""
    import re

    if re.fullmatch(r"(sha256:)?[0-9a-f]{12,64}", given) and img.id.startswith(given.removeprefix("sha256:")):
        return [m for m in img.names if mine.get(m) == img.id]
    cands = [given]
    try:
        cands.append(str(naming.normalize(given)))
    except TbxError:
        pass
    return [c for c in cands if mine.get(c) == img.id][:1]


def rmi(names: list[str], *, force: bool, all_: bool) -> int:
    naming.names_or_all(names, all_, what="image", cmd="rmi",
                        placeholder="IMAGE", check=naming.validate_image_name)
    mine = images.owned()
    targets: list[tuple[str, str]] = []  # (name tbx stored, image id)
    if all_:
        for n, iid in sorted(mine.items()):
            img = images.inspect_local(n)
            if img is not None and img.id == iid:
                targets.append((n, iid))
    else:
        for n in names:
            img = images.inspect_local(n)
            if img is None:
                raise TbxError(f"image {n} does not exist", fix="See 'tbx list --images'")
            stored = _stored_names(n, img, mine)
            if not stored:
                raise TbxError(f"image {n} was not pulled by tbx; tbx removes only images it stored",
                               fix=f"Remove it with podman if you are sure: podman rmi {n}")
            targets.append((stored[0], img.id))
    users = _users({iid for _, iid in targets})
    removing: list[dict] = []
    for n, iid in targets:
        rows = users.get(iid, [])
        foreign = [r["Names"][0] for r in rows if (r.get("Labels") or {}).get(naming.LABEL_MANAGED) != "true"]
        if foreign and (not all_ or force):
            raise TbxError(f"image {n} is used by {', '.join(foreign)}, which tbx did not create",
                           fix=f"podman rm {foreign[0]}")
        if rows and not force and not all_:
            used = ", ".join(r["Names"][0] for r in rows)
            raise TbxError(f"image {n} is used by container{'s' if len(rows) > 1 else ''} {used}",
                           fix=f"Remove {'them' if len(rows) > 1 else 'it'} first (tbx rm), or tbx rmi --force {n}")
        removing += rows
    if all_ and not force:  # --all without --force: skip what is in use, say so
        busy = {r.get("ImageID") for r in removing}
        for n, iid in targets:
            if iid in busy:
                output.note(f"keeping {n}: a container uses it (tbx rmi --all --force removes both)")
        targets = [(n, iid) for n, iid in targets if iid not in busy]
        removing = []
    # Everything is checked: now delete.
    for row in removing:
        from ..containers import podman_rm

        removed, r = podman_rm(row["Id"], force=True, stop_time=0)
        if not removed:
            raise TbxError(f"could not remove container {row['Names'][0]}", details=r.stderr.strip()[-600:],
                           exit_code=EXIT_ENGINE)
        from .. import status

        status.remove(row["Names"][0])
    for n, _ in targets:
        r = runner.run(["podman", "rmi", n], timeout=120)
        if r.returncode != 0 and images.inspect_local(n) is not None:
            raise TbxError(f"could not remove image {n}", details=r.stderr.strip()[-600:], exit_code=EXIT_ENGINE)
        images.forget(n)
        print(n)
    return 0
