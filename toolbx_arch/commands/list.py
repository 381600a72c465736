"""``tbx list``: tbx containers (by label) and the images tbx stored (its index), through the
podman CLI: one ``podman ps`` and one ``podman images``, run concurrently. No podman-py, no API
service, no rich: ``entry`` calls ``fast`` before the CLI framework is even imported."""

from __future__ import annotations

import json
import subprocess

from .. import arch as archmod
from .. import naming, output
from ..errors import EXIT_ENGINE, TbxError


def _podman(*args: str) -> subprocess.Popen:
    from ..runner import popen

    return popen(["podman", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                 text=True)


def _answer(p: subprocess.Popen, what: str):
    out, err = p.communicate(timeout=120)
    if p.returncode != 0:
        raise TbxError(f"podman could not list {what}", details=err.strip()[-600:], exit_code=EXIT_ENGINE)
    return json.loads(out or "[]")


def _accelerated(labels: dict) -> dict | None:
    """tbx create --accelerate: whether its native compiler matches, and what runs natively."""
    from ..accel import LABEL, describe

    return describe(labels.get(LABEL))


def _volumes(labels: dict) -> list:
    """What tbx create --volume shared (its label), [] when nothing."""
    try:
        v = json.loads(labels.get(naming.LABEL_VOLUMES) or "[]")
    except ValueError:
        return []
    return v if isinstance(v, list) else []


def _status(row: dict) -> str:
    state = row.get("State")
    return state.get("Status", "?") if isinstance(state, dict) else str(state or "?")


def _iso(epoch) -> str:
    """podman ps gives Created as Unix seconds (CreatedAt is "4 seconds ago"): ISO 8601, UTC."""
    import time

    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))
    except (TypeError, ValueError, OverflowError):
        return str(epoch or "")


def collect(*, containers: bool = True, images: bool = True, arch: str | None = None) -> dict:
    from .. import images as imagesmod
    from .. import status

    a = archmod.resolve(arch) if arch is not None else None
    ps = _podman("ps", "-a", "--filter", f"label={naming.MANAGED_FILTER}", "--format", "json")
    imgs = _podman("images", "--format", "json") if images else None
    out: dict = {"schema": 1}
    rows = []
    every = _answer(ps, "containers")
    status.write_catalog(naming.arch_by_container(every))
    for c in every:
        labels = c.get("Labels") or {}
        name = (c.get("Names") or ["?"])[0]
        if a and labels.get(naming.LABEL_ARCH) != a.name:
            continue
        rows.append({"name": name, "arch": labels.get(naming.LABEL_ARCH), "oci_arch": labels.get(naming.LABEL_OCI_ARCH),
                     "image": labels.get(naming.LABEL_IMAGE) or c.get("Image"), "status": _status(c),
                     "created": _iso(c.get("Created")), "id": c.get("Id"), "cpu": labels.get(naming.LABEL_CPU),
                     "volumes": _volumes(labels), "accelerated": _accelerated(labels)})
    if containers:
        out["containers"] = sorted(rows, key=lambda r: r["name"])
    if imgs is not None:
        mine = imagesmod.owned()
        host = archmod.host()
        found = []
        listed: set[str] = set()
        for img in _answer(imgs, "images"):
            for n in img.get("Names") or []:
                if mine.get(n) != img.get("Id") or n in listed:  # podman repeats an image per name
                    continue
                listed.add(n)
                _, sa = naming.split_arch_suffix(n.rsplit(":", 1)[-1]) if ":" in n.rsplit("/", 1)[-1] else ("", None)
                ia = sa or host
                if a and ia != a:
                    continue
                found.append({"image": n, "arch": ia.name, "oci_arch": ia.oci_arch, "size": img.get("Size"),
                              "id": img.get("Id")})
        out["images"] = sorted(found, key=lambda r: r["image"])
    elif images:
        out["images"] = []
    return out


def list_remote(name: str, arch: str | None, json_out: bool) -> int:
    """The tbx containers on a connection's machine (the ones `tbx run` made there)."""
    from .. import nodes, remote

    node = nodes.verified(name)
    rows = remote.list_containers(node)
    if arch is not None:
        a = archmod.resolve(arch)
        rows = [r for r in rows if r["arch"] == a.name]
    rows.sort(key=lambda r: r["name"])
    if json_out:
        output.print_json({"schema": 1, "connection": name, "uri": node.uri, "containers": rows})
    else:
        output.table(None, ["NAME", "ARCH", "SOURCE", "STATUS"],
                     [[r["name"], r["arch"], r["source"], r["status"]] for r in rows], plain=True)
    return 0


def list_(*, containers: bool, images: bool, arch: str | None, json_out: bool, connection: str | None = None) -> int:
    if connection is not None:
        if images:
            raise TbxError("--connection lists containers only", fix="Drop --images, or list the node's images "
                           f"with: podman --connection {connection} images")
        return list_remote(connection, arch, json_out)
    if not containers and not images:
        containers = images = True
    data = collect(containers=containers, images=images, arch=arch)
    if json_out:
        output.print_json(data)
        return 0
    if "containers" in data:
        output.table("Containers" if images else None, ["NAME", "ARCH", "IMAGE", "STATUS", "CREATED"],
                     [[r["name"], r["arch"] + ("" if not r["accelerated"] else " (accelerated)" if
                                                r["accelerated"]["matched"] else " (accelerated, UNMATCHED compiler)"),
                       r["image"], r["status"], r["created"].replace("T", " ").rstrip("Z")]
                      for r in data["containers"]],
                     plain=True)
    if "images" in data:
        if containers:
            print()
        output.table("Images" if containers else None, ["IMAGE", "ARCH", "SIZE"],
                     [[r["image"], r["arch"], output.human_size(r["size"])] for r in data["images"]], plain=True)
    return 0


def fast(argv: list[str]) -> int | None:
    """``tbx list`` with the options ``grammar.FAST["list"]`` names: run it without the CLI
    framework. None when the arguments are anything else (help, a typo): the CLI then reads them."""
    from ..grammar import FAST, flag, scan

    got = scan("list", argv, FAST["list"])
    if got is None or got[1]:
        return None
    values = got[0]
    arch = values["arch"][-1] if "arch" in values else None
    return list_(containers=flag(values, "containers"), images=flag(values, "images"), arch=arch,
                 json_out=flag(values, "json_out"))
