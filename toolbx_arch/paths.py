"""Where tbx keeps things, and which files it may trust (a leaf: standard library only, cheap
enough for the fast paths). The only module that reads ``XDG_*`` variables.

Directories:

- **Root** takes everything from root's own home in the password database and from /var/lib and
  /run: never from ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``, ``XDG_CACHE_HOME``, ``XDG_RUNTIME_DIR``
  or ``HOME``, which ``su`` without ``-``, ``sudo -E`` or ``sudo --preserve-env`` carry over from
  another user.
- **Anyone else** uses the XDG variables when they are absolute paths (a relative one is ignored,
  as the XDG spec says), else the XDG defaults under the home directory. The runtime directory
  must be a directory the user owns that nobody else can write.

Trust (``untrusted``/``require_trusted``): a file that tbx reads to decide what to execute,
register, mount or contact is used only when it, and every directory above it, is owned by root
or by the user running tbx and is not writable by group or others, as ssh and sudo decide. One
exception, as for /tmp: a directory owned by root that others may write but that has the sticky
bit, because nobody can rename or remove an entry of another user there. Both the path as given
and the path its links resolve to are checked.
"""

from __future__ import annotations

import os
import stat

SYSTEM_CONFIG = "/etc/tbx/config.toml"
ROOT_DATA = "/var/lib/tbx"


def is_root() -> bool:
    return os.getuid() == 0


def home() -> str:
    """The user's home: root's from the password database (never $HOME); anyone else's $HOME."""
    if is_root():
        import pwd

        try:
            return pwd.getpwuid(0).pw_dir or "/root"
        except KeyError:
            return "/root"
    return os.path.expanduser("~")


def _xdg(var: str, default: str) -> str:
    if not is_root():
        value = os.environ.get(var) or ""
        if os.path.isabs(value):
            return value
    return os.path.join(home(), default)


def config_home() -> str:
    """$XDG_CONFIG_HOME, or ~/.config (root: always root's ~/.config)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_home() -> str:
    return _xdg("XDG_DATA_HOME", os.path.join(".local", "share"))


def user_config() -> str:
    """tbx's configuration file of this user."""
    return os.path.join(config_home(), "tbx", "config.toml")


def containers_config() -> str:
    """podman's per-user configuration directory (registries.conf, containers.conf, connections)."""
    return os.path.join(config_home(), "containers")


def data_dir() -> str:
    """tbx's data: the images index, pulled emulators (``/var/lib/tbx`` for root)."""
    return ROOT_DATA if is_root() else os.path.join(data_home(), "tbx")


class RuntimeDirError(Exception):
    """No private runtime directory (the message says which were tried and why)."""


def _private(path: str, uid: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o022


def runtime_dir() -> str:
    """/run for root; $XDG_RUNTIME_DIR or /run/user/UID when the user owns it and nobody else can
    write it."""
    uid = os.getuid()
    if uid == 0:
        return "/run"
    env = os.environ.get("XDG_RUNTIME_DIR")
    for cand in (env, f"/run/user/{uid}"):
        if cand and _private(cand, uid):
            return cand
    raise RuntimeDirError(f"no private runtime directory: XDG_RUNTIME_DIR ({env or 'unset'}) "
                          f"and /run/user/{uid} are not directories owned by uid {uid} and writable only by it")


# The session variables a container's processes get from the user's session (see execspec).
SESSION_ENV = ("XDG_CURRENT_DESKTOP", "XDG_DATA_DIRS", "XDG_MENU_PREFIX", "XDG_RUNTIME_DIR", "XDG_SEAT",
               "XDG_SESSION_DESKTOP", "XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_VTNR")
# How help text and the manual name these places (spelled here only).
CONFIG_FILE = "$XDG_CONFIG_HOME/tbx/config.toml"
RUNTIME_FIX = "Log in as that user (su -l), or set XDG_RUNTIME_DIR to a directory of your own"
ENVIRONMENT = [
    ("XDG_CONFIG_HOME", "The user's configuration directory (default ~/.config); a relative value is ignored. "
                        "Root never reads it: root's is always ~root/.config."),
    ("XDG_DATA_HOME", "The user's data directory (default ~/.local/share): the index of images tbx stored and "
                      "pulled emulators. Root uses /var/lib/tbx."),
    ("XDG_RUNTIME_DIR", "The user's runtime directory (default /run/user/UID): container status, locks and "
                        "caches. Root always uses /run, and drops these variables and HOME before running podman."),
]
FILES = [
    (f"{CONFIG_FILE}, /etc/tbx/config.toml", "Configuration (see tbx(1), CONFIGURATION)."),
    ("$XDG_DATA_HOME/tbx/images.json, /var/lib/tbx/images.json (root)",
     "The image names tbx stored: tbx rmi removes only these."),
    ("$XDG_RUNTIME_DIR/tbx/, /run/tbx/ (root)", "Container status and the arch catalog, build namespace holders, "
                                                 "the emulator check cache."),
    ("$XDG_DATA_HOME/tbx/emulators/NAME/, /var/lib/tbx/emulators/NAME/ (root)",
     "Emulators installed by tbx emulator pull: qemu-ARCH-static binaries and emulator.json."),
]

INHERITED = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")


def root_environment(environ=None) -> None:
    """For root: drop the XDG directories and HOME another user's environment may have passed on,
    so that tbx and the programs it runs (podman, skopeo, ssh) use root's own files, and keep only
    the PATH directories root can trust (another user's ~/bin would otherwise give root their
    "podman"). Nothing for anyone else."""
    if not is_root():
        return
    environ = os.environ if environ is None else environ
    for var in INHERITED:
        environ.pop(var, None)
    environ["HOME"] = home()
    dirs = environ.get("PATH", "").split(":")
    kept = [d for d in dirs if os.path.isabs(d) and os.path.isdir(d) and untrusted(d, 0) is None]
    if kept != dirs:
        environ["PATH"] = ":".join(kept) or "/usr/sbin:/usr/bin:/sbin:/bin"


# --- trust ------------------------------------------------------------------------------------

def _owner(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _chain(path: str) -> list[str]:
    """``path`` and every directory above it, deepest first."""
    out = []
    p = os.path.normpath(path)
    while True:
        out.append(p)
        if p == "/":
            return out
        p = os.path.dirname(p)


def untrusted(path: str, uid: int | None = None) -> str | None:
    """Why ``path`` must not be trusted by ``uid`` (default: this process's), or None when it
    may be. A path that does not exist is None: callers decide what a missing file means."""
    uid = os.getuid() if uid is None else uid
    owners = {0, uid}
    path = os.path.abspath(path)
    try:
        real = os.path.realpath(path, strict=True)
    except OSError:
        return None
    for chain, follow in ((_chain(real), True), (_chain(path), False)):
        for i, p in enumerate(chain):
            try:
                st = os.stat(p) if follow or i else os.lstat(p)
            except OSError as e:
                return f"{p} cannot be checked ({e.strerror})"
            if stat.S_ISLNK(st.st_mode):
                continue  # the link itself: its directory decides who can change it
            if st.st_uid not in owners:
                return f"{p} is owned by {_owner(st.st_uid)}, not by root{'' if uid == 0 else ' or ' + _owner(uid)}"
            if st.st_mode & 0o022:
                if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and st.st_uid == 0 and i:
                    continue  # /tmp: others may add entries, but not replace ours
                who = "group and others" if st.st_mode & 0o022 == 0o022 else "its group" if st.st_mode & 0o020 else "others"
                return f"{p} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def trust_fix(path: str, reason: str) -> str:
    """The command that makes ``path`` trusted again, for the reason ``untrusted`` gave."""
    bad = reason.split(" ", 1)[0]
    if " is writable by " in reason:
        return f"chmod go-w {bad}   (or move {path} somewhere only you can write)"
    return (f"Use a file of your own in a directory only you can write, or: sudo chown {'root' if is_root() else os.getuid()} "
            f"{bad}")


def require_trusted(path: str, what: str):
    """Raise a TbxError naming ``path`` (``what`` it is) when ``untrusted`` says so."""
    why = untrusted(path)
    if why:
        from .errors import TbxError

        raise TbxError(f"refusing to use {what} {path}: {why}", fix=trust_fix(path, why),
                       details="tbx uses a file that decides what it runs, registers, mounts or contacts only when "
                               "it and every directory above it belong to root or to you and nobody else can write them")
