"""``tbx rm``: remove tbx containers through the podman CLI (no API service). Every check runs
before anything is removed: a refused command changes nothing."""

from __future__ import annotations

import json

from .. import naming, runner, status
from ..errors import EXIT_ENGINE, TbxError


def remove_container(name: str, *, force: bool) -> None:
    """Remove one tbx container (``containers.podman_rm``), then its status directory and its
    catalog entry."""
    from ..containers import podman_rm

    removed, r = podman_rm(name, force=force)
    if not removed:
        raise TbxError(f"could not remove container {name}", details=r.stderr.strip()[-600:], exit_code=EXIT_ENGINE)
    status.remove(name)
    status.catalog_update(remove=(name,))


def _remove_if_ours(name: str, *, force: bool) -> bool:
    """One podman call that removes NAME only if it is a tbx container (podman ANDs the two
    filters). False when nothing was removed: the caller then finds out why."""
    import re

    r = runner.run(["podman", "rm", *(["--force", "--time", "2"] if force else []),
                    "--filter", f"label={naming.MANAGED_FILTER}", "--filter", f"name=^{re.escape(name)}$"],
                   timeout=120)
    from ..containers import busy_but_gone

    if (r.returncode != 0 and not busy_but_gone(r, name)) or (r.returncode == 0 and not r.stdout.strip()):
        return False
    status.remove(name)
    status.catalog_update(remove=(name,))
    return True


def rm_remote(names: list[str], *, all_: bool, connection: str) -> int:
    """``tbx rm --connection NODE NAME…|--all``: the tbx containers on that machine. They only keep
    a keep-alive running between runs, so they are stopped and removed without --force."""
    from .. import nodes, remote

    node = nodes.verified(connection)
    rows = {r["name"]: r for r in remote.list_containers(node)}
    if all_:
        targets = sorted(rows)
    else:
        missing = [n for n in names if n not in rows]
        if missing:
            raise TbxError(f"no tbx container {', '.join(missing)} on {connection}",
                           fix=f"See: tbx list --connection {connection}")
        targets = names
    for n in targets:
        r = runner.run([*node.podman, "rm", "--force", "--time", "0", n], timeout=120)
        if r.returncode != 0 and "no such container" not in r.stderr.lower():
            nodes.raise_if_unreachable(r, node)
            raise TbxError(f"could not remove container {n} on {connection}", details=r.stderr.strip()[-600:],
                           exit_code=EXIT_ENGINE)
        print(n)
    return 0


def rm(names: list[str], *, force: bool, all_: bool, connection: str | None = None) -> int:
    naming.names_or_all(names, all_, what="container", cmd="rm",
                        placeholder="NAME", check=naming.validate_container_name)
    if connection is not None:
        return rm_remote(names, all_=all_, connection=connection)
    status.catalog_update()  # a held catalog lock stops rm before it removes anything
    if len(names) == 1 and not all_ and _remove_if_ours(names[0], force=force):
        print(names[0])
        return 0
    if all_:
        from ..containers import list_managed

        rows = list_managed()
        targets = [((row.get("Names") or ["?"])[0], row.get("State") == "running") for row in rows]
    else:
        r = runner.run(["podman", "container", "inspect", "--format", "json", *names], timeout=60)
        found = {d.get("Name", "").lstrip("/"): d for d in json.loads(r.stdout or "[]")} if r.stdout.strip() else {}
        targets = []
        for n in names:
            d = found.get(n) or next((x for x in found.values() if x.get("Id", "").startswith(n)), None)
            if d is None:
                if r.returncode != 0 and "no such container" not in r.stderr.lower():
                    raise TbxError(f"podman could not inspect container {n}", details=r.stderr.strip()[-600:],
                                   exit_code=EXIT_ENGINE)
                raise TbxError(f"container {n} does not exist", fix="See 'tbx list'")
            labels = (d.get("Config") or {}).get("Labels") or {}
            if labels.get(naming.LABEL_MANAGED) != "true":
                raise TbxError(f"container {n} was not created by tbx", fix=f"Use 'podman rm {n}'")
            targets.append((d.get("Name", n).lstrip("/"), bool((d.get("State") or {}).get("Running"))))
    running = [n for n, up in targets if up]
    if running and not force:
        raise TbxError(f"container{'s' if len(running) > 1 else ''} {', '.join(running)} "
                       f"{'are' if len(running) > 1 else 'is'} running", fix="tbx rm --force …")
    for n, _ in targets:
        remove_container(n, force=force)
        print(n)
    return 0
