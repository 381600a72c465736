"""Facts about the host: distribution family, kernel version, install commands, subordinate id
ranges, the OCI runtime containers.conf names, and the podman and skopeo versions. No printing."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Package providing a tool, per distribution family.
PACKAGES: dict[str, dict[str, str]] = {
    "podman": {"debian": "podman", "fedora": "podman", "arch": "podman", "suse": "podman"},
    "skopeo": {"debian": "skopeo", "fedora": "skopeo", "arch": "skopeo", "suse": "skopeo"},
    "qemu": {"debian": "qemu-user-static", "fedora": "qemu-user-static", "arch": "qemu-user-static",
             "suse": "qemu-linux-user"},
    "newuidmap": {"debian": "uidmap", "fedora": "shadow-utils", "arch": "shadow", "suse": "shadow"},
}
INSTALLERS = {
    "debian": "sudo apt-get install -y {pkg}",
    "fedora": "sudo dnf install -y {pkg}",
    "arch": "sudo pacman -S --needed {pkg}",
    "suse": "sudo zypper install -y {pkg}",
}


def os_release() -> dict[str, str]:
    """The host's os-release fields, read by the standard library; {} when there is none."""
    import platform

    try:
        return dict(platform.freedesktop_os_release())
    except OSError:
        return {}


def family(rel: dict[str, str] | None = None) -> str:
    """debian, fedora, arch, suse, or unknown — from ID and ID_LIKE of ``rel`` (the host's
    os-release unless given)."""
    rel = os_release() if rel is None else rel
    ids = [rel.get("ID", "")] + rel.get("ID_LIKE", "").split()
    for i in ids:
        if i in ("debian", "ubuntu"):
            return "debian"
        if i in ("fedora", "rhel", "centos"):
            return "fedora"
        if i in ("arch", "archlinux"):
            return "arch"
        if i.startswith("opensuse") or i in ("suse", "sles"):
            return "suse"
    return "unknown"


def install_command(tool: str, fam: str | None = None) -> str:
    fam = fam or family()
    key = "qemu" if tool.startswith("qemu") else tool
    pkgs = PACKAGES.get(key, {})
    if fam in INSTALLERS and fam in pkgs:
        return INSTALLERS[fam].format(pkg=pkgs[fam])
    return f"Install {pkgs.get('debian', tool)} with your distribution's package manager"


def kernel_version(release: str | None = None) -> tuple[int, int]:
    rel = release if release is not None else os.uname().release
    m = re.match(r"(\d+)\.(\d+)", rel)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


BINFMT_USERNS_KERNEL = (6, 7)


def kernel_has_binfmt_userns(release: str | None = None) -> bool:
    return kernel_version(release) >= BINFMT_USERNS_KERNEL


def runtime_dir() -> Path:
    """/run for root; else the user's private runtime directory (``paths.runtime_dir``)."""
    from .errors import TbxError
    from .paths import RUNTIME_FIX
    from .status import StatusError, runtime_dir as raw

    try:
        return Path(raw())
    except StatusError as e:
        raise TbxError(str(e), fix=RUNTIME_FIX) from None


def subid_ranges(user: str, uid: int, path: Path) -> list[tuple[int, int]]:
    """Ranges for a user (by name or uid) in /etc/subuid-style file."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)):
            try:
                out.append((int(parts[1]), int(parts[2])))
            except ValueError:
                continue
    return out


def oci_runtime(root: Path, home: Path | None) -> str | None:
    import tomllib

    files = [root / "usr/share/containers/containers.conf", root / "etc/containers/containers.conf"]
    files += sorted((root / "etc/containers/containers.conf.d").glob("*.conf"))
    if home is not None:
        from . import paths

        user = Path(paths.containers_config()) if root == Path("/") else home / ".config/containers"
        files += [user / "containers.conf"]
        files += sorted((user / "containers.conf.d").glob("*.conf"))
    runtime = None
    for f in files:
        try:
            data = tomllib.loads(f.read_text())
        except (OSError, ValueError):
            continue
        runtime = data.get("engine", {}).get("runtime", runtime)
    if runtime is None:
        for name in ("crun", "runc"):
            if any((root / d.lstrip("/") / name).exists() for d in ("/usr/bin", "/usr/local/bin", "/usr/sbin")):
                return name
    return runtime


def tool_versions() -> dict[str, str | None]:
    """podman and skopeo versions (None when absent), probed concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    from . import runner

    def probe(tool: str) -> str | None:
        if runner.which(tool) is None:
            return None
        r = runner.run([tool, "--version"], timeout=30)
        m = re.search(r"version\s+(\S+)", r.stdout or "")
        return m.group(1) if m else (r.stdout or "").strip() or "unknown"

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(("podman", "skopeo"), pool.map(probe, ("podman", "skopeo"))))
    return found
