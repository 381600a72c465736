from __future__ import annotations

import time

from .. import naming, podman_client, status
from ..errors import EXIT_ENGINE, TbxError


def remove_container(c, *, force: bool) -> None:
    """Remove one tbx container (retrying podman's occasional 'device or resource busy')."""
    import podman.errors

    for attempt in range(5):
        try:
            c.remove(force=force, v=True)
            break
        except podman.errors.NotFound:
            break
        except podman.errors.APIError as e:
            if "busy" in str(e).lower() and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise TbxError(f"could not remove container {c.name}", details=str(e), exit_code=EXIT_ENGINE) from e
    status.remove(c.name)


def rm(names: list[str], *, force: bool, all_: bool) -> int:
    if not names and not all_:
        raise TbxError("no container named", fix="tbx rm NAME…, or tbx rm --all")
    for n in names:
        naming.validate_container_name(n)
    import podman.errors

    with podman_client.engine() as client:
        if all_:
            targets = client.containers.list(all=True, filters={"label": naming.MANAGED_FILTER})
        else:
            targets = []
            for n in names:
                try:
                    c = client.containers.get(n)
                except podman.errors.NotFound:
                    raise TbxError(f"container {n} does not exist", fix="See 'tbx list'") from None
                if (c.labels or {}).get(naming.LABEL_MANAGED) != "true":
                    raise TbxError(f"container {n} was not created by tbx", fix=f"Use 'podman rm {n}'")
                targets.append(c)
        running = [c.name for c in targets if podman_client.state_of(c) == "running"]
        if running and not force:
            raise TbxError(f"container{'s' if len(running) > 1 else ''} {', '.join(running)} "
                           f"{'are' if len(running) > 1 else 'is'} running", fix="tbx rm --force …")
        for c in targets:
            remove_container(c, force=force)
            print(c.name)
    return 0
