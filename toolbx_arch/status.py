"""The runtime directory and each container's status channel (a leaf: stdlib only, no runner).

Rules (the container is not trusted, and neither is a runtime directory of another user):

- Root always uses ``/run``; it never takes the runtime directory from its environment, which after
  a plain ``su`` names another user's directory (``paths.runtime_dir``). Anyone else uses theirs or
  ``/run/user/UID`` only when it is a directory they own that nobody else can write.
- ``RUNTIME/tbx/containers/NAME`` is made one component at a time through directory file
  descriptors opened with ``O_NOFOLLOW``: tbx never follows a link there, and changes the mode or
  owner only of a directory it has just opened and checked. ``tbx`` and ``containers`` are 0700;
  ``NAME`` is 0755 and owned by the host user that is root inside the container (tbx's own user,
  or the mapped root of a ``--userns auto`` container), so the container's other users cannot
  write it.
- Inside, the init writes ``ready`` and holds a shared lock on it for as long as it lives: the lock
  is the one truth for "ready". ``failed`` carries a reason; tbx opens it with ``O_NOFOLLOW``,
  accepts only a regular file, reads at most ``MAX_READ`` bytes and shows only printable text.
"""

from __future__ import annotations

import os
import stat

MAX_READ = 512
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class StatusError(Exception):
    """A runtime or status directory that tbx must not use (the message says which and why)."""


def runtime_dir() -> str:
    """The runtime directory (``paths.runtime_dir``: root's is /run, anyone else's is private)."""
    from .paths import RuntimeDirError, runtime_dir as rt

    try:
        return rt()
    except RuntimeDirError as e:
        raise StatusError(str(e)) from None


def cache_path(name: str) -> str | None:
    """RUNTIME/tbx/NAME, for a small cache of answers (an ELF header, a node's arch); None when
    there is no private runtime directory (then nothing is remembered)."""
    try:
        return os.path.join(runtime_dir(), "tbx", name)
    except StatusError:
        return None


def load_cache(p: str | None, max_entries: int = 256) -> dict:
    """The cache file's JSON object; {} when it is missing, broken or has grown past ``max_entries``."""
    import json

    try:
        with open(p) as f:  # type: ignore[arg-type]
            data = json.load(f)
        return data if isinstance(data, dict) and len(data) < max_entries else {}
    except (OSError, TypeError, ValueError):
        return {}


def store_cache(p: str | None, cache: dict) -> None:
    """Replace the cache file atomically; a cache that cannot be written is only slower."""
    import json

    if not p:
        return
    try:
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        tmp = f"{p}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, p)
    except OSError:
        pass


def path(name: str) -> str:
    """Where the status directory of container ``name`` lives (made by ``prepare``)."""
    return os.path.join(runtime_dir(), "tbx", "containers", name)


def _subdir(parent_fd: int, comp: str, mode: int, owners: tuple[int, ...], chown_to: int | None = None,
            where: str = "") -> tuple[int, bool]:
    created = False
    try:
        os.mkdir(comp, mode, dir_fd=parent_fd)
        created = True
    except FileExistsError:
        pass
    try:
        fd = os.open(comp, _DIR, dir_fd=parent_fd)
    except OSError as e:
        raise StatusError(f"{where}/{comp} is not a directory tbx can use ({e.strerror}; a symbolic link is refused)") from e
    st = os.fstat(fd)
    if chown_to is not None and st.st_uid != chown_to and st.st_uid in owners:
        os.fchown(fd, chown_to, -1)
        st = os.fstat(fd)
    if st.st_uid not in owners + ((chown_to,) if chown_to is not None else ()):
        os.close(fd)
        raise StatusError(f"{where}/{comp} belongs to uid {st.st_uid}, not to uid {os.getuid()}: refusing to use it")
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)
    return fd, created


def prepare(name: str, *, root_uid: int | None = None) -> tuple[str, bool]:
    """Make (or check) the status directory of ``name``; ``root_uid`` is the host uid of the
    container's root when it is not tbx's own user. Returns (path, whether it was made now)."""
    if not name or "/" in name or name in (".", ".."):
        raise StatusError(f"{name!r} is not a container name")
    uid = os.getuid()
    base = runtime_dir()
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        where = base
        for comp in ("tbx", "containers"):
            nfd, _ = _subdir(fd, comp, 0o700, (uid,), where=where)
            os.close(fd)
            fd, where = nfd, f"{where}/{comp}"
        nfd, created = _subdir(fd, name, 0o755, (uid,), chown_to=root_uid if uid == 0 else None, where=where)
        os.close(nfd)
    finally:
        os.close(fd)
    return os.path.join(base, "tbx", "containers", name), created


def read_small(name: str, entry: str) -> tuple[str, float] | None:
    """(text, mtime) of a regular file in the status directory, at most MAX_READ bytes, printable
    characters only; None when it is missing or anything but a regular file."""
    try:
        dfd = os.open(path(name), _DIR)
    except (OSError, StatusError):
        return None
    try:
        fd = os.open(entry, _FILE, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        data = os.read(fd, MAX_READ)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = data.decode("utf-8", "replace")
    return "".join(c if c.isprintable() or c == "\n" else "?" for c in text).strip(), st.st_mtime


def is_ready(name: str, *, unlocked_ok: bool = False) -> bool:
    """Whether the container's init is alive and done, from the shared lock it holds on its ready
    file (microseconds, no podman call). An init that could not use flock leaves a plain ready
    file: that counts only with ``unlocked_ok`` (podman said the container runs)."""
    import fcntl

    try:
        fd = os.open(os.path.join(path(name), "ready"), _FILE)
    except (OSError, StatusError):
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not os.read(fd, 16).startswith(b"flock"):
            return unlocked_ok and stat.S_ISREG(os.fstat(fd).st_mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def clear(name: str) -> None:
    """Empty the status directory of ``name`` and keep it: a new container of that name has just
    been made with it mounted (a concurrent create of the same name must still find it)."""
    try:
        entries = os.listdir(path(name))
    except (OSError, StatusError):
        return
    for entry in entries:
        unlink(name, entry)


def remove(name: str) -> None:
    """Remove the status directory of a container that is gone (entries are not followed)."""
    clear(name)
    try:
        os.rmdir(path(name))
    except OSError:
        pass


def unlink(name: str, entry: str) -> None:
    """Remove one entry of the status directory (the entry itself, never what a link points to)."""
    try:
        dfd = os.open(path(name), _DIR)
    except (OSError, StatusError):
        return
    try:
        os.unlink(entry, dir_fd=dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --- the catalog: which tbx containers exist, and their arch (for `run --arch`'s fast path) ---
#
# RUNTIME/tbx/catalog.json, rewritten by every command that lists tbx containers anyway (list,
# and a look-up by arch) and updated by create and rm. It lives in the runtime directory, so it
# is gone after a reboot. It is a hint: the fast path uses a container from it only when the
# catalog names exactly one container of that arch and that container's init holds its lock;
# anything else takes the normal path, which asks podman.

def _catalog_path() -> str:
    return os.path.join(runtime_dir(), "tbx", "catalog.json")


def catalog() -> dict[str, str] | None:
    """{container name: arch name}, or None when there is no catalog (yet)."""
    import json

    try:
        fd = os.open(_catalog_path(), _FILE)
    except (OSError, StatusError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = json.loads(os.read(fd, 1 << 20) or b"null")
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict):
        return None
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def write_catalog(entries: dict[str, str]) -> None:
    import json

    try:
        base = runtime_dir()
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            tfd, _ = _subdir(fd, "tbx", 0o700, (os.getuid(),), where=base)
        finally:
            os.close(fd)
        try:
            tmp = f"catalog.{os.getpid()}.tmp"
            wfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=tfd)
            with os.fdopen(wfd, "w") as f:
                json.dump(entries, f)
            os.rename(tmp, "catalog.json", src_dir_fd=tfd, dst_dir_fd=tfd)
        finally:
            os.close(tfd)
    except (OSError, StatusError):
        pass  # a hint only: without it, `run --arch` takes the normal path


LOCK_TIMEOUT = 10.0   # seconds any lock of tbx's is waited for


def lock_holder(fd: int) -> int | None:
    """The pid holding a lock on ``fd``'s file, from /proc/locks (None when it cannot be told)."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[5] == dev and parts[4].isdigit() and "->" not in parts[1]:
                    return int(parts[4])
    except OSError:
        pass
    return None


def lock_exclusive(fd: int, what: str, timeout: float = LOCK_TIMEOUT, *, fix: str | None = None,
                   max_delay: float = 0.2) -> None:
    """flock(LOCK_EX) on ``fd``, waiting at most ``timeout`` seconds (polling at most every
    ``max_delay``); then a TbxError naming ``what``, the process holding it and ``fix`` (default:
    how to see that process). A process inside a container can hold a lock in the shared runtime
    directory: tbx never waits for it for ever."""
    import fcntl
    import time

    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                from .errors import TbxError

                pid = lock_holder(fd)
                who = f"process {pid}" if pid else "another process"
                raise TbxError(f"{what} has been locked by {who} for {timeout:.0f} s; giving up",
                               fix=fix or (f"See what it is: ps -o pid,user,args -p {pid}" if pid else
                                           "Wait for the other tbx to finish") + ", then try again") from None
            time.sleep(delay)
            delay = min(delay * 2, max_delay)


def catalog_update(*, add: dict[str, str] | None = None, remove: tuple[str, ...] = ()) -> None:
    """Add or remove entries; without a catalog there is nothing to keep current (the next
    full listing writes one). With nothing to change: only checks, within the lock's bound, that
    the lock can be had (create and rm ask first, so that a held lock stops them before they act)."""

    try:
        lock = os.open(os.path.join(runtime_dir(), "tbx"), _DIR)
    except (OSError, StatusError):
        return
    try:
        lock_exclusive(lock, f"the container catalog ({runtime_dir()}/tbx)")  # parallel creates and removes
        if not add and not remove:
            return
        cur = catalog()
        if cur is None:
            return
        cur.update(add or {})
        for n in remove:
            cur.pop(n, None)
        write_catalog(cur)
    finally:
        os.close(lock)
