"""binfmt_misc: parse the host's entries (read only), compute the registration line that the
init script writes into the container's own, private instance, and pick the binfmt mode (private
registration, or the host's own entries on kernels older than 6.7) with the fixes host mode needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import os

from .arch import ARCHES, Arch
from .errors import TbxError

PROC_BINFMT = Path("/proc/sys/fs/binfmt_misc")
DEFAULT_FLAGS = "PFC"  # P: keep argv[0] (busybox picks its applet by it); F: open the interpreter at registration; C: credentials from the binary (setuid sudo)


@dataclass(frozen=True)
class Entry:
    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int = 0
    magic: bytes = b""
    mask: bytes = b""
    kind: str = "M"  # M magic or E extension

    @property
    def has_credentials(self) -> bool:
        return "C" in self.flags

    def matches(self, a: Arch) -> bool:
        """Whether this entry would handle executables of architecture ``a``."""
        if self.kind != "M" or self.offset != 0 or not self.magic:
            return False
        mask = self.mask or b"\xff" * len(self.magic)
        sample = a.magic
        if len(sample) < len(self.magic):
            return False
        return all((sample[i] & mask[i]) == (self.magic[i] & mask[i]) for i in range(len(self.magic)))

    def as_dict(self) -> dict:
        return {"name": self.name, "enabled": self.enabled, "interpreter": self.interpreter,
                "flags": self.flags, "credentials": self.has_credentials}


def parse_entry(name: str, text: str) -> Entry:
    enabled, interp, flags, offset, magic, mask, kind = False, "", "", 0, b"", b"", "M"
    for line in text.splitlines():
        line = line.strip()
        if line == "enabled":
            enabled = True
        elif line == "disabled":
            enabled = False
        elif line.startswith("interpreter "):
            interp = line.split(" ", 1)[1]
        elif line.startswith("flags:"):
            flags = line.split(":", 1)[1].strip()
        elif line.startswith("offset "):
            offset = int(line.split()[1])
        elif line.startswith("magic "):
            magic = bytes.fromhex(line.split()[1])
        elif line.startswith("mask "):
            mask = bytes.fromhex(line.split()[1])
        elif line.startswith("extension "):
            kind = "E"
    return Entry(name, enabled, interp, flags, offset, magic, mask, kind)


def read_status(root: Path = PROC_BINFMT) -> str:
    """'enabled', 'disabled', or 'not mounted'."""
    try:
        return (root / "status").read_text().strip()
    except OSError:
        return "not mounted"


def read_entries(root: Path = PROC_BINFMT) -> list[Entry]:
    out = []
    try:
        names = sorted(p.name for p in root.iterdir())
    except OSError:
        return out
    for n in names:
        if n in ("register", "status"):
            continue
        try:
            out.append(parse_entry(n, (root / n).read_text()))
        except (OSError, ValueError):
            continue
    return out


def entries_for(a: Arch, entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.matches(a)]


def escape(data: bytes) -> str:
    """Every byte as \\xNN: the kernel decodes these itself (write the text with printf '%s')."""
    return "".join(f"\\x{b:02x}" for b in data)


def registration_line(a: Arch, interpreter: str, flags: str = DEFAULT_FLAGS) -> str:
    if ":" in interpreter or "\n" in interpreter:
        raise ValueError(f"interpreter path cannot contain ':' or newlines: {interpreter!r}")
    return f":{a.binfmt_name}:M:0:{escape(a.magic)}:{escape(a.mask)}:{interpreter}:{flags}"


def parse_registration(line: str) -> tuple[str, str, int, bytes, bytes, str, str]:
    """Inverse of registration_line (for tests): name, kind, offset, magic, mask, interp, flags."""
    parts = line[1:].split(":") if line.startswith(":") else []
    if len(parts) != 7:
        raise ValueError(f"not a registration line: {line!r}")
    name, kind, off, magic, mask, interp, flags = parts

    def unescape(s: str) -> bytes:
        return bytes(int(s[i + 2:i + 4], 16) for i in range(0, len(s), 4))

    return name, kind, int(off or 0), unescape(magic), unescape(mask), interp, flags


def snapshot(root: Path = PROC_BINFMT) -> dict[str, str]:
    """Every file's text under a binfmt_misc mount, for 'unchanged' checks."""
    out = {}
    try:
        for p in sorted(root.iterdir()):
            if p.name == "register":
                continue
            try:
                out[p.name] = p.read_text()
            except OSError as e:
                out[p.name] = f"<unreadable: {e.strerror}>"
    except OSError:
        pass
    return out


__all__ = ["ARCHES", "Entry", "parse_entry", "read_entries", "registration_line", "snapshot"]


BINFMT_MODES = ("auto", "private", "host")


def binfmt_mode(setting: str | None, kernel_ok: bool) -> str:
    """``private`` or ``host``: TBX_BINFMT_MODE, else the configured ``binfmt_mode``, else auto
    (private on Linux >= 6.7, where each container gets its own binfmt_misc; host before)."""
    m = (os.environ.get("TBX_BINFMT_MODE") or setting or "auto").strip().lower()
    if m not in BINFMT_MODES:
        raise TbxError(f"binfmt mode {m!r} is not one of {', '.join(BINFMT_MODES)}",
                       fix="Set TBX_BINFMT_MODE (or binfmt_mode in the configuration) to auto, private or host")
    return ("private" if kernel_ok else "host") if m == "auto" else m


HOST_ENTRY_FIX = {
    "debian": "sudo apt-get install -y qemu-user-static binfmt-support && sudo update-binfmts --enable {name}",
    "fedora": "sudo dnf install -y qemu-user-static && sudo systemctl restart systemd-binfmt",
    "arch": "sudo pacman -S --needed qemu-user-static qemu-user-static-binfmt && sudo systemctl restart systemd-binfmt",
    "suse": "sudo zypper install -y qemu-linux-user && sudo systemctl restart systemd-binfmt",
}
CREDENTIALS_FIX = {
    "debian": "add 'credentials yes' to /usr/share/binfmts/{name} and run: sudo update-binfmts --import {name}",
    "other": "copy /usr/lib/binfmt.d/{name}-static.conf to /etc/binfmt.d/, add C to its flags, and run: "
             "sudo systemctl restart systemd-binfmt",
}
