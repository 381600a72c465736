"""What ``podman exec`` needs to run something in a tbx container as the invoking user, and
whether the container's init is ready. Kept to a handful of stdlib imports: ``tbx run -c NAME``
on a ready container uses only this module and ``runner.execvp`` (see ``entry``)."""

from __future__ import annotations

import grp
import os
import pwd

from .paths import SESSION_ENV

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASS_ENV = ("COLORTERM", "DBUS_SESSION_BUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS", "DESKTOP_SESSION", "DISPLAY",
            "LANG", "LANGUAGE", "LC_ALL", "LC_ADDRESS", "LC_COLLATE", "LC_CTYPE", "LC_IDENTIFICATION",
            "LC_MEASUREMENT", "LC_MESSAGES", "LC_MONETARY", "LC_NAME", "LC_NUMERIC", "LC_PAPER",
            "LC_TELEPHONE", "LC_TIME", "SSH_AUTH_SOCK", "TERM", "WAYLAND_DISPLAY", "XAUTHORITY",
            *SESSION_ENV)


class User:
    __slots__ = ("name", "uid", "gid", "group", "home", "shell")

    def __init__(self, name: str, uid: int, gid: int, group: str, home: str, shell: str) -> None:
        self.name, self.uid, self.gid, self.group, self.home, self.shell = name, uid, gid, group, home, shell

    def __repr__(self) -> str:
        return f"User({self.name!r}, {self.uid}, {self.gid})"


def invoking_user() -> User:
    uid = os.getuid()
    pw = pwd.getpwuid(uid)
    try:
        group = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        group = pw.pw_name
    return User(pw.pw_name, uid, pw.pw_gid, group, pw.pw_dir, pw.pw_shell or "/bin/sh")


def workdir_for(user: User) -> tuple[str, str | None]:
    """(the directory a command runs in, why it is not the current one or None): the current
    directory when the container has it (the home is shared), else the home directory."""
    try:
        cwd = os.getcwd()
    except OSError:
        return user.home, "the current directory no longer exists"
    if cwd == user.home or cwd.startswith(user.home.rstrip("/") + "/"):
        return cwd, None
    return user.home, f"{cwd} is not shared with the container (only {user.home} is)"


def exec_argv(name: str, command: list[str], *, user: User, interactive: bool, tty: bool,
              workdir: str | None = None, notice: bool = False) -> list[str]:
    """``podman exec`` running ``command`` in container ``name`` as ``user``, in the current
    directory when it exists there (the home is shared), else in the home directory; ``notice``:
    say so in one line on stderr when it is not the current directory."""
    if workdir is None:
        workdir, why = workdir_for(user)
        if why and notice:
            from .output import note

            note(f"running in {workdir}: {why}")
    argv = ["podman", "exec"]
    if interactive:
        argv.append("--interactive")
    if tty:
        argv.append("--tty")
    argv += ["--user", user.name if user.uid != 0 else "root", "--workdir", workdir]
    env = {"PATH": DEFAULT_PATH, "HOME": user.home, "USER": user.name, "LOGNAME": user.name,
           "SHELL": user.shell, "TBX_CONTAINER": name}
    for k in PASS_ENV:
        if k in os.environ:
            env[k] = os.environ[k]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    return argv + [name, *command]


# The user's shell when the container has it, else sh; as a login shell.
LOGIN_SHELL = ["/bin/sh", "-c", 'if [ -x "$1" ]; then exec "$1" -l; fi; exec /bin/sh -l', "sh"]


def may_map_arches(a=None) -> bool:
    """Could a configuration file map an arch (``a``: this one) to a podman connection? True
    when a file mentions connections (and one of ``a``'s names). Read as text, the files named
    as in config (SYSTEM_FILE, user_file): importing config and a TOML parser costs the fast
    path more than this; a false alarm only sends the command down the normal path."""
    from . import paths

    names = [n.lower().encode() for n in a.all_names] if a is not None else [b""]
    for f in (paths.SYSTEM_CONFIG, paths.user_config()):
        try:
            with open(f, "rb") as fh:
                text = fh.read(256 * 1024).lower()
            if b"connections" in text and any(n in text for n in names):
                return True
        except OSError:
            continue
    return False


def _by_arch(name: str) -> str | None:
    """The one container of an architecture, from the catalog (see ``status``), or None."""
    from .arch import lookup
    from .status import catalog

    a = lookup(name) if name and "," not in name else None
    if a is not None and may_map_arches(a):
        return None  # an arch may go to a podman connection: the normal path decides
    cat = catalog() if a is not None else None
    if not cat:
        return None
    names = [n for n, arch in cat.items() if arch == a.name]
    return names[0] if len(names) == 1 else None


def _is_name(name: str) -> bool:
    return bool(name) and not name.startswith("-") and "/" not in name and not any(c.isspace() for c in name)


def run_shape(argv: list[str]) -> tuple[str | None, str | None, list[str]] | None:
    """(container, arch, command) of ``tbx run -c NAME CMD…`` or ``tbx run --arch A CMD…`` (exactly
    one of those options, once, and one arch), or None for anything else."""
    from .grammar import one, scan

    got = scan("run", argv, ("-c", "--container", "--arch", "--platform"), command_follows=True)
    if got is None:
        return None
    values, command = got
    container, arch = one(values, "container"), one(values, "arch")
    if len(values) != 1 or container is ... or arch is ... or not command or command[0].startswith("-"):
        return None
    if container is not None and not _is_name(container):
        return None
    if arch is not None and "," in arch:
        return None  # several arches: multirun's
    return container, arch, command


def enter_shape(argv: list[str]) -> tuple[str | None, str | None] | None:
    """(name, arch) of ``tbx enter NAME`` or ``tbx enter --arch A``, or None for anything else."""
    from .grammar import one, scan

    got = scan("enter", argv, ("--arch", "--platform"))
    if got is None:
        return None
    values, words = got
    arch = one(values, "arch")
    if arch is ... or len(words) > 1 or (arch is None) == (not words):
        return None
    return (words[0], None) if words else (None, arch)


def fast_run(argv: list[str]) -> None:
    """``tbx run -c NAME CMD…`` and ``tbx run --arch A CMD…`` (``run_shape``) on a ready container:
    exec podman now, without the CLI framework, whose imports cost more than ``podman exec``
    itself. Returns when it does not apply; the normal path then handles the command."""
    shape = run_shape(argv)
    if shape is None:
        return
    container, arch, command = shape
    name = container if container is not None else _by_arch(arch)
    if not name or not _is_name(name):
        return
    from .status import is_ready

    if is_ready(name) is not True:
        return
    import sys

    from .runner import execvp

    tty = sys.stdin.isatty() and sys.stdout.isatty()
    execvp(exec_argv(name, command, user=invoking_user(), interactive=True, tty=tty, notice=True))


def fast_enter(argv: list[str]) -> None:
    """``tbx enter NAME`` and ``tbx enter --arch A`` on a ready container, from a terminal: exec
    ``podman exec -it`` now. Returns when it does not apply (the normal path then handles it)."""
    import sys

    shape = enter_shape(argv)
    if shape is None:
        return
    name = shape[0] if shape[0] is not None else _by_arch(shape[1])
    if not name or not _is_name(name) or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return
    from .status import is_ready

    if is_ready(name) is not True:
        return
    from .runner import execvp

    user = invoking_user()
    execvp(exec_argv(name, [*LOGIN_SHELL, user.shell], user=user, interactive=True, tty=True, notice=True))
