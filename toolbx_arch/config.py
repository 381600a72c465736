"""Configuration: the user's tbx/config.toml (``paths.user_config``) over /etc/tbx/config.toml.

    default_arch = "aarch64"                 # used when --arch is not given
    default_image = "quay.io/me/box:1"       # used when neither --image nor --distro is given
    emulator_paths = ["/opt/qemu/bin"]       # searched before the usual places
    emulator_image = "registry.example.org/binfmt:latest"   # tbx emulator pull without IMAGE
    host_emulators = true                    # false: only emulator_paths and pulled emulators
    binfmt_mode = "auto"                     # private (Linux >= 6.7), host (the host's entries), auto
    accelerate = true                        # tbx create --accelerate by default (or "unmatched")

    [connections]                            # arch -> podman connection of a machine running it natively
    aarch64 = "arm-node"                     # or a list: the first that answers is used
    s390x = ["z-a", "z-b"]

    [images]                                 # per distro, or per distro:release
    "debian" = "quay.io/toolbx-images/debian-toolbox:{release}"
    "debian:12" = "registry.example.org/debian-toolbox:12"

A file that does not parse or a value of the wrong type is a TbxError naming the file and the
key. An unknown key is a warning naming it, and is ignored: a file written for a newer tbx must
not lock an older one out. Where the user's file lives is ``paths.user_config`` (root: always
root's own, never one an inherited environment names). A file that another user could change is refused
(``paths.require_trusted``): it decides what tbx runs, registers and contacts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TbxError

from .paths import SYSTEM_CONFIG

SYSTEM_FILE = Path(SYSTEM_CONFIG)


def user_file() -> Path:
    from . import paths

    return Path(paths.user_config())


@dataclass
class Config:
    default_arch: str | None = None
    default_image: str | None = None
    emulator_paths: tuple[str, ...] = ()
    emulator_image: str | None = None   # tbx emulator pull without IMAGE
    host_emulators: bool = True         # false: the host's qemu-*-static are not considered
    binfmt_mode: str | None = None      # auto (default), private or host; TBX_BINFMT_MODE overrides
    accelerate: str | None = None       # tbx create --accelerate by default: "matched" or "unmatched"
    images: dict[str, str] = field(default_factory=dict)
    connections: dict[str, list[str]] = field(default_factory=dict)   # arch -> podman connection names, in order
    files: tuple[str, ...] = ()

    def image_for(self, distro: str, release: str | None) -> str | None:
        for key in ((f"{distro}:{release}",) if release else ()) + (distro,):
            if key in self.images:
                return self.images[key].replace("{release}", release or "latest")
        return None


_KEYS = {"default_arch": str, "default_image": str, "emulator_paths": list, "images": dict,
         "emulator_image": str, "host_emulators": bool, "binfmt_mode": str, "connections": dict, "accelerate": object}


def _bad(path: Path, key: str, why: str) -> TbxError:
    return TbxError(f"configuration file {path}: {why}", details=f"key: {key}" if key else None,
                    fix=f"Edit {path} (see 'man tbx', section CONFIGURATION)")


MAX_BYTES = 256 * 1024  # a configuration file is a few lines; anything this big is a mistake


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist. Only a regular file (a link to one is
    fine), at most MAX_BYTES, UTF-8; opened without blocking, so a FIFO or device never hangs."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _bad(path, "", f"cannot be read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _bad(path, "", "is not a regular file")
        if st.st_size > MAX_BYTES:
            raise _bad(path, "", f"is {st.st_size} bytes; a configuration file is at most {MAX_BYTES // 1024} KiB")
        data = os.read(fd, MAX_BYTES + 1)
    except OSError as e:
        raise _bad(path, "", f"cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(path, "", f"is not UTF-8 text (byte {e.start})") from None


def _merge(cfg: Config, path: Path) -> None:
    import tomllib

    from . import paths

    paths.require_trusted(str(path), "the configuration file")  # before reading: nobody else can swap it
    text = read_text(path)
    if text is None:
        return
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _bad(path, "", f"is not valid TOML: {str(e).splitlines()[0][:200]}") from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise _bad(path, "", f"is not valid TOML ({type(e).__name__}: nested too deeply or too large)") from None
    for key, value in list(data.items()):
        if key not in _KEYS:
            from .output import warn

            warn(f"configuration file {path}: unknown key {key!r} ignored (known: {', '.join(_KEYS)})")
            del data[key]
            continue
        if not isinstance(value, _KEYS[key]):
            raise _bad(path, key, f"{key!r} must be a {_KEYS[key].__name__}, not {type(value).__name__}")
    if "default_arch" in data:
        from . import arch

        if arch.lookup(data["default_arch"]) is None:
            raise _bad(path, "default_arch", f"architecture {data['default_arch']!r} is not supported "
                       f"(supported: {arch.supported_summary()})")
        cfg.default_arch = data["default_arch"]
    if "default_image" in data:
        cfg.default_image = data["default_image"]
    if "emulator_paths" in data:
        paths = data["emulator_paths"]
        if not all(isinstance(p, str) and p.startswith("/") for p in paths):
            raise _bad(path, "emulator_paths", "emulator_paths must be a list of absolute directory paths")
        cfg.emulator_paths = tuple(paths) + cfg.emulator_paths
    if "emulator_image" in data:
        cfg.emulator_image = data["emulator_image"]
    if "host_emulators" in data:
        cfg.host_emulators = data["host_emulators"]
    if "accelerate" in data:
        v = data["accelerate"]
        if v not in (True, False, "unmatched"):
            raise _bad(path, "accelerate", "accelerate must be true, false or \"unmatched\"")
        cfg.accelerate = "matched" if v is True else "unmatched" if v == "unmatched" else "no"
    if "binfmt_mode" in data:
        if data["binfmt_mode"] not in ("auto", "private", "host"):
            raise _bad(path, "binfmt_mode", "binfmt_mode must be auto, private or host")
        cfg.binfmt_mode = data["binfmt_mode"]
    for k, v in data.get("images", {}).items():
        if not isinstance(v, str):
            raise _bad(path, f"images.{k}", f"images.{k!r} must be an image reference string")
        cfg.images[k] = v
    if data.get("connections"):
        from . import arch as archmod

        for k, v in data["connections"].items():
            if archmod.lookup(k) is None:
                raise _bad(path, f"connections.{k}", f"connections: architecture {k!r} is not supported "
                           f"(supported: {archmod.supported_summary()})")
            names = [v] if isinstance(v, str) else v
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise _bad(path, f"connections.{k}", f"connections.{k!r} must be a podman connection name, or a "
                           "list of them (the first that answers is used)")
            cfg.connections[archmod.lookup(k).name] = list(names)
    cfg.files += (str(path),)


def load() -> Config:
    cfg = Config()
    _merge(cfg, SYSTEM_FILE)
    _merge(cfg, user_file())   # the user's file wins: applied last
    return cfg
