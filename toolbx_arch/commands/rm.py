"""``tbx rm``: remove tbx containers through the podman CLI (no API service). Every check runs
before anything is removed: a refused command changes nothing."""

from __future__ import annotations

import json
import time

from .. import naming, runner, status
from ..errors import EXIT_ENGINE, TbxError


def _busy_but_gone(r, name: str) -> bool:
    """podman 4.3 often fails removing a --userns auto container with "device or resource busy"
    on its shm mount after it has already dropped the container's record. Then the container is
    gone: its leftover storage is removed (retried while busy), and True. Anything else: False."""
    import re

    m = re.search(r"removing container ([0-9a-f]{64})", r.stderr)
    if r.returncode == 0 or "busy" not in r.stderr.lower() or not m:
        return False
    if runner.run(["podman", "container", "exists", name], timeout=60).returncode == 0:
        return False  # still there: the caller retries or reports
    for attempt in range(6):
        rr = runner.run(["podman", "rm", "--storage", "--force", m.group(1)], timeout=120)
        if rr.returncode == 0 or "busy" not in rr.stderr.lower():
            break
        time.sleep(0.3 * (attempt + 1))
    return True


def remove_container(name: str, *, force: bool) -> None:
    """Remove one tbx container (retrying podman's occasional 'device or resource busy'), then
    its status directory and its catalog entry."""
    for attempt in range(5):
        r = runner.run(["podman", "rm", *(["--force", "--time", "2"] if force else []), name], timeout=120)
        if r.returncode == 0 or "no such container" in r.stderr.lower() or _busy_but_gone(r, name):
            break
        if "busy" in r.stderr.lower() and attempt < 4:
            time.sleep(0.5 * (attempt + 1))
            continue
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
    if (r.returncode != 0 and not _busy_but_gone(r, name)) or (r.returncode == 0 and not r.stdout.strip()):
        return False
    status.remove(name)
    status.catalog_update(remove=(name,))
    return True


def rm(names: list[str], *, force: bool, all_: bool) -> int:
    naming.names_or_all(names, all_, what="container", cmd="rm",
                        placeholder="NAME", check=naming.validate_container_name)
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
