"""A private binfmt_misc registration for image builds: no root, no host entry.

Each emulated arch's `podman build` runs in a user namespace of its own, where the kernel (>= 6.7)
gives a fresh binfmt_misc instance that lives and dies with it:

- Rootless: a namespace nested in the user's podman namespace (entered with `podman unshare`)
  that maps each of its ids to itself, so podman works on the user's normal storage. Nothing is
  registered in the user's podman namespace itself: an instance there, once mounted, hides the
  host's entries from every plain rootless container of that user until its pause process ends
  (measured: disabled or unmounted, it still stands in the way).
- Root: root's podman runs in the initial user namespace, whose binfmt_misc is the host's. Every
  local arch of a root build, emulated or native, builds in a namespace of its own whose uid 0 is
  root's first subordinate id (never host uid 0), with storage, runroot and runc state of its own
  owned by that id; results are then moved into root's normal storage. (podman 4.3's
  ``build --userns-uid-map`` was tried first: it leaves the RUN step's root file system
  unwritable.)

Every build also runs in a PID namespace of its own: a RUN step's processes outlive an
interrupted podman, and ending the namespace ends them. Running builds are holders (PID and start
time) in the runtime directory, so that an interrupted one can tell whether leftover build
containers may belong to another. The instance is mounted from inside the new user namespace; one
that holds anything, or whose device is the host's, is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field

from . import binfmt, runner
from .arch import Arch
from .errors import TbxError

BUILD_STORAGE = "/var/lib/tbx/build-storage"   # root's builds: owned by root's first subordinate id
BUILD_HOME = "/var/lib/tbx/build-home"         # podman's $HOME there (network configuration)
BUILD_RUNROOT = "/run/tbx-build"               # runroot, tmpdir and runc's state, likewise

# Mounts a binfmt_misc instance and registers, in whatever user namespace it runs in.
# $1 mount point; $2 the host instance's device number ("" if none); $3 "fresh" (mount a new
# instance, refuse one that holds anything); then "reg NAME LINE" operations, and "exec CMD…" to
# run CMD after them. With TBX_WAIT_FIFO set, it first waits for a line on that FIFO.
_SCRIPT = r'''
set -u
if [ -n "${TBX_WAIT_FIFO:-}" ]; then read -r _ < "$TBX_WAIT_FIFO" || exit 6; unset TBX_WAIT_FIFO; fi
d=$1; hostdev=$2; mode=$3; shift 3
mkdir -p "$d" && mount -t binfmt_misc binfmt_misc "$d" || { echo "cannot mount binfmt_misc in this user namespace" >&2; exit 3; }
dev=$(stat -c %d "$d") || exit 3
if [ -n "$hostdev" ] && [ "$dev" = "$hostdev" ]; then
    echo "the binfmt_misc instance at $d is the host's: refusing to register there" >&2; exit 4
fi
if [ "$(ls "$d" | tr '\n' ' ')" != "register status " ]; then
    echo "the binfmt_misc instance at $d is not a fresh one: refusing to register there" >&2; exit 4
fi
while [ $# -gt 0 ]; do
    case $1 in
    reg) printf '%s' "$3" > "$d/register" || exit 5; shift 3;;
    exec) shift; exec "$@";;
    *) echo "unknown operation $1" >&2; exit 2;;
    esac
done
'''

# Rootless, run by `podman unshare` (as root of the user's podman namespace): $1 a private
# directory for its FIFO, $2/$3 the uid_map and gid_map to write; then the command. It starts the command in a new user, mount and PID
# namespace and maps every id to itself (only a process in the parent namespace may write the
# maps; newuidmap would look "root" up in /etc/subuid), then lets it go on through a FIFO.
_NEST = r'''
set -u
dir=$1; umap=$2; gmap=$3; shift 3
fifo=$(mktemp -u "$dir/tbx-nest.XXXXXXXX") && mkfifo -m 600 "$fifo" || exit 6
me=$(readlink /proc/self/ns/user)
TBX_WAIT_FIFO=$fifo unshare --user --mount --pid --fork --kill-child --mount-proc -- "$@" &
pid=$!
i=0
while [ "$(readlink /proc/$pid/ns/user 2>/dev/null)" = "$me" ]; do
    i=$((i + 1)); if [ $i -gt 1000 ] || ! kill -0 $pid 2>/dev/null; then rm -f "$fifo"; exit 6; fi; sleep 0.01
done
if ! { printf '%s\n' "$umap" > /proc/$pid/uid_map && printf '%s\n' "$gmap" > /proc/$pid/gid_map; }; then
    kill -KILL $pid; rm -f "$fifo"; echo "cannot map the build's user namespace" >&2; exit 6
fi
timeout 30 sh -c 'echo go > "$1"' sh "$fifo"; rm -f "$fifo"
wait $pid
'''

# A PID namespace of its own for a `podman build` (with its own /proc, which runc needs).
PIDNS = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]


def host_instance_dev() -> str:
    """The device of the host's binfmt_misc mount, if it is mounted where it usually is."""
    try:
        st, parent = os.stat(binfmt.PROC_BINFMT), os.stat(binfmt.PROC_BINFMT.parent)
    except OSError:
        return ""
    return str(st.st_dev) if st.st_dev != parent.st_dev else ""


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_id(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid}:{_proc_start(pid)}"


def holder_alive(hid: str) -> bool:
    pid, _, start = hid.partition(":")
    return pid.isdigit() and _proc_start(int(pid)) == start


@dataclass
class State:
    """The live `tbx build` runs of this user: holder id -> the entry names it registers."""
    holders: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "State":
        try:
            d = json.loads(text) if text.strip() else {}
            return cls({str(k): [str(x) for x in v] for k, v in dict(d.get("holders", {})).items()})
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"holders": self.holders}, sort_keys=True)

    def prune(self, alive=holder_alive) -> None:
        self.holders = {h: v for h, v in self.holders.items() if alive(h)}


@dataclass
class Env:
    """How a build reaches podman: ``podman`` for storage commands; ``build_argv(arch)`` for
    that arch's `podman build` prefix (up to and including podman's own options); whether the
    emulated arches' results must be moved to the normal storage."""
    podman: list[str]
    builds: dict = field(default_factory=dict)      # Arch -> prefix, for the emulated arches
    own_storage: bool = False
    holder: str = ""
    enter: list[str] = field(default_factory=list)  # rootless: into the user's podman namespace

    def build_argv(self, a: Arch) -> list[str]:
        return self.builds.get(a) or plain_build(self.enter)

    def build_options(self, a: Arch) -> list[str]:
        """`podman build` options for arch ``a``: in root's build namespace, RUN steps share the
        host's network (that namespace cannot set up podman's bridge)."""
        return ["--network", "host"] if self.own_storage and a in self.builds else []

    def others_building(self) -> bool:
        """Whether another live `tbx build` of this user shares the storage now."""
        with _locked() as st:
            st.prune()
            return any(h != self.holder for h in st.holders)


def _root_ranges() -> tuple[tuple[int, int], tuple[int, int]]:
    uids, gids = subordinate_range("root", "/etc/subuid"), subordinate_range("root", "/etc/subgid")
    if not uids or not gids or uids[1] < 65536 or gids[1] < 65536:
        raise TbxError("root has no subordinate id range of 65536 ids: a root build maps the root of its RUN steps "
                       "there, never to host uid 0",
                       fix="echo root:1001000000:65536 >> /etc/subuid; echo root:1001000000:65536 >> /etc/subgid")
    return uids, gids


def plain_build(enter: list[str] | None = None) -> list[str]:
    """`podman build`'s prefix in the normal storage with nothing registered (rootless, a PID
    namespace needs the user's podman namespace, so it runs in there: ``enter``)."""
    return [*PIDNS, "podman"] if os.geteuid() == 0 else [*(enter or user_namespace()), *PIDNS, "podman"]


def user_namespace() -> list[str]:
    """The prefix that runs a command as root of this user's podman namespace, as `podman
    unshare` does. With podman's pause process running, nsenter joins its namespaces directly
    (the way podman itself does it, with the variables podman sets for a process in there), which
    saves starting podman once per build; otherwise `podman unshare` starts that process."""
    pause = _pause()
    if pause is None:
        return ["podman", "unshare"]
    return ["nsenter", "--user", "--mount", "--target", str(pause[0]), "--",
            "env", "_CONTAINERS_USERNS_CONFIGURED=done", f"_CONTAINERS_ROOTLESS_UID={os.getuid()}",
            f"_CONTAINERS_ROOTLESS_GID={os.getgid()}"]


def _register_then(line: str) -> list[str]:
    """Mount a fresh instance, register ``line``, then exec what follows."""
    return ["sh", "-c", _SCRIPT, "tbx-binfmt", str(binfmt.PROC_BINFMT), host_instance_dev(), "fresh",
            "reg", line.split(":")[1], line, "exec"]


def _identity_maps() -> tuple[str, str]:
    """uid_map and gid_map text for a namespace nested in the user's podman namespace that maps
    each id to itself: one line per extent of the parent's map, because the kernel wants each
    nested extent inside a single extent of its parent."""
    def identity(text: str) -> str:
        return "\n".join(f"{f[0]} {f[0]} {f[2]}" for f in (ln.split() for ln in text.splitlines()) if len(f) == 3)

    pause = _pause()  # the namespace podman unshare would enter, read without starting podman
    if pause:
        return identity(pause[1]), identity(pause[2])
    r = runner.run(["podman", "unshare", "sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map"],
                   timeout=120)
    if r.returncode != 0:
        raise TbxError("rootless podman does not start", details=r.stderr.strip()[-400:] or None,
                       fix="Run 'podman unshare true' and fix what it reports (often /etc/subuid and /etc/subgid)")
    parts = (r.stdout.split("--") + [""])[:2]
    return identity(parts[0]), identity(parts[1])


def _pause() -> tuple[int, str, str] | None:
    """(pid, uid_map, gid_map) of this user's running podman pause process, if there is one: a
    process of this user named "podman pause" in a user namespace other than this one."""
    from . import status

    try:
        with open(os.path.join(status.runtime_dir(), "libpod", "tmp", "pause.pid")) as f:
            pid = int(f.read().strip())
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return None
        with open(f"/proc/{pid}/comm") as c:
            if c.read().strip() != "podman pause":
                return None
        if os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user"):
            return None
        with open(f"/proc/{pid}/uid_map") as u, open(f"/proc/{pid}/gid_map") as g:
            umap, gmap = u.read(), g.read()
    except (OSError, ValueError, status.StatusError):
        return None
    if not (umap.strip() and gmap.strip()) or umap.split()[:3] == ["0", "0", "4294967295"]:
        return None
    return pid, umap, gmap


def _state_dir() -> str:
    from . import status

    d = os.path.join(status.runtime_dir(), "tbx", "build")
    os.makedirs(d, mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if not os.path.isdir(d) or os.path.islink(d) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise TbxError(f"{d} is not a private directory of this user", fix=f"rm -rf {d}")
    return d


def _kernel_refusal(stderr: str) -> TbxError:
    return TbxError("this kernel gives a user namespace no binfmt_misc of its own, so tbx cannot register an "
                    "emulator without writing the host's (which it never does)",
                    fix="Upgrade to Linux 6.7 or newer", details=stderr.strip()[-400:] or None)


@contextlib.contextmanager
def _locked():
    fd = os.open(os.path.join(_state_dir(), "lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        from .status import lock_exclusive

        lock_exclusive(fd, f"the build registry ({_state_dir()}/lock)")
        path = os.path.join(_state_dir(), "holders.json")
        try:
            with open(path) as f:
                st = State.parse(f.read())
        except FileNotFoundError:
            st = State()
        try:
            yield st
        finally:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(st.dump())
            os.replace(tmp, path)
    finally:
        os.close(fd)


def _hold(names: list[str]) -> str:
    hid = holder_id()
    with _locked() as st:
        st.prune()
        st.holders[hid] = names
    return hid


def _release(hid: str) -> None:
    with _locked() as st:
        st.holders.pop(hid, None)
        st.prune()


def subordinate_range(user: str = "root", path: str = "/etc/subuid") -> tuple[int, int] | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == user and parts[1].isdigit() and parts[2].isdigit():
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None


def _owned_dir(path: str, uid: int, gid: int) -> None:
    """``path`` as a directory of ``uid`` only (made, or emptied when it belonged to another id:
    it holds only what tbx's earlier builds left)."""
    import shutil

    try:
        st = os.lstat(path)
        if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != uid:
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    except FileNotFoundError:
        pass
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, 0o700)


def _readable_by_others(path: str) -> bool:
    """Whether ``path`` (a file, or a directory and all below it) and the directories above it
    can be read by an unrelated id, as root's build namespace is."""
    import stat as st_

    p = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(p).st_mode & 0o001:
            return False
        if p == "/":
            break
        p = os.path.dirname(p)
    todo = [os.path.abspath(path)]
    while todo:
        cur = todo.pop()
        st = os.lstat(cur)
        if st_.S_ISLNK(st.st_mode):
            continue
        if st_.S_ISDIR(st.st_mode):
            if st.st_mode & 0o005 != 0o005:
                return False
            todo += [e.path for e in os.scandir(cur)]
        elif not st.st_mode & 0o004:
            return False
    return True


@contextlib.contextmanager
def readable_inputs(containerfile: str, context: str, authfile: str | None, env: "Env"):
    """(Containerfile, context, authfile) as root's build namespace can read them: as given when an
    unrelated id can read them (and always outside that namespace); else copies owned by the
    namespace's root under BUILD_HOME, removed afterwards (root's own 0700 directories). Root's
    registry credentials (``authfile``, else REGISTRY_AUTH_FILE or podman's) are always copied
    there: the namespace cannot read root's."""
    import shutil
    import tempfile

    containerfile, context = os.path.abspath(containerfile), os.path.abspath(context)
    if not env.own_storage:
        yield containerfile, context, authfile
        return
    uid, gid = root_storage_owner()
    creds = authfile or os.environ.get("REGISTRY_AUTH_FILE") or "/run/containers/0/auth.json"
    creds = creds if os.path.isfile(creds) else None
    readable = _readable_by_others(context) and _readable_by_others(containerfile)
    if readable and creds is None:
        yield containerfile, context, None
        return
    d = tempfile.mkdtemp(prefix="inputs-", dir=BUILD_HOME)
    try:
        cfile, ctx, auth = containerfile, context, None
        if not readable:
            ctx = os.path.join(d, "context")
            r = runner.run(["cp", "-a", "--", context, ctx], timeout=1800)
            if r.returncode != 0:
                raise TbxError(f"copying the build context {context} for root's build namespace failed",
                               details=r.stderr.strip()[-400:] or None)
            inside = os.path.relpath(containerfile, context)
            cfile = os.path.join(ctx, inside) if not inside.startswith("..") else os.path.join(d, "Containerfile")
            if inside.startswith(".."):
                shutil.copyfile(containerfile, cfile)
        if creds:
            auth = os.path.join(d, "auth.json")
            shutil.copyfile(creds, auth)
            os.chmod(auth, 0o600)
        for top, dirs, files in os.walk(d):
            for n in [top, *(os.path.join(top, x) for x in dirs + files)]:
                os.lchown(n, uid, gid)
        yield cfile, ctx, auth
    finally:
        shutil.rmtree(d, ignore_errors=True)


def root_storage_owner() -> tuple[int, int]:
    """The host ids that own root's build storage: root's first subordinate uid and gid."""
    uids, gids = _root_ranges()
    return uids[0], gids[0]


@contextlib.contextmanager
def _root(lines: dict[Arch, str], native: list[Arch]):
    """Root's build namespace: its uid 0 is root's first subordinate id (never host uid 0), every
    id up to the range's size likewise; it mounts its own binfmt_misc (with ``lines``) and /dev/shm,
    and podman there uses storage, runroot and state of its own, owned by that id. Every local arch
    of a root build (``lines``' and ``native``) builds there."""
    import subprocess

    uids, gids = _root_ranges()
    n = min(uids[1], gids[1])
    top = os.path.dirname(BUILD_STORAGE)
    os.makedirs(top, mode=0o711, exist_ok=True)
    if os.stat(top).st_mode & 0o111 != 0o111:  # the namespace's root (a subordinate id) passes through only
        os.chmod(top, os.stat(top).st_mode & 0o7777 | 0o111)
    for d in (BUILD_STORAGE, BUILD_HOME, BUILD_RUNROOT):
        _owned_dir(d, uids[0], gids[0])
    ops = [x for a, line in lines.items() for x in ("reg", a.binfmt_name, line)]
    # The holder: a user and mount namespace of the build's own, alive until tbx closes its stdin.
    script = ('mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || exit 3\n' + _SCRIPT
              + '\necho ready\nread -r _ || true\n')
    holder = runner.popen(["unshare", "--user", f"--map-users={uids[0]},0,{n}", f"--map-groups={gids[0]},0,{n}",
                           "--setuid", "0", "--setgid", "0", "--mount", "--fork", "--kill-child", "--",
                           "sh", "-c", script, "tbx-binfmt", str(binfmt.PROC_BINFMT), host_instance_dev(), "fresh", *ops],
                          die_with_parent=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        for line in holder.stdout:
            if line.strip() == "ready":
                break
        else:
            err = holder.stderr.read()
            holder.wait()
            if holder.returncode == 3:
                raise _kernel_refusal(err)
            raise TbxError("setting up the build's user namespace failed", details=err.strip()[-400:] or None)
        # unshare(2) moved the holder itself into the namespaces (its forked child runs the script)
        enter = ["nsenter", "-t", str(holder.pid), "-U", "-m", "--", "env", f"HOME={BUILD_HOME}"]
        storage = ["--root", BUILD_STORAGE, "--runroot", os.path.join(BUILD_RUNROOT, "run"),
                   "--tmpdir", os.path.join(BUILD_RUNROOT, "tmp"), "--events-backend", "none",
                   "--network-config-dir", os.path.join(BUILD_HOME, "net"), "--cgroup-manager", "cgroupfs",
                   "--runtime-flag", f"root={os.path.join(BUILD_RUNROOT, 'runc')}"]
        yield Env(podman=[*enter, "podman", *storage],
                  builds={a: [*enter, *PIDNS, "podman", *storage] for a in [*lines, *native]}, own_storage=True)
    finally:
        try:
            holder.stdin.close()
        except OSError:
            pass
        try:
            holder.wait(timeout=10)
        except Exception:  # noqa: BLE001 - never leave it behind
            holder.kill()
            holder.wait()


def _fifo_dir() -> str:
    from . import paths

    try:
        return paths.runtime_dir()
    except paths.RuntimeDirError:
        return "/tmp"


@contextlib.contextmanager
def emulation(lines: dict[Arch, str], native: list[Arch] = ()):
    """Within the block, ``Env.build_argv(a)`` runs `podman build` for arch ``a`` where its line
    of ``lines`` (arch -> registration line) is registered privately; other arches get a plain
    build. The build is a holder in the runtime directory for as long as the block runs."""
    hid = _hold([a.binfmt_name for a in lines])
    try:
        if (lines or native) and os.geteuid() == 0:  # root: every local arch in its namespace
            with _root(lines, list(native)) as env:
                env.holder = hid
                yield env
        elif lines:
            umap, gmap = _identity_maps()
            enter = user_namespace()
            nest = [*enter, "sh", "-c", _NEST, "tbx-nest", _fifo_dir(), umap, gmap]
            yield Env(podman=["podman"], holder=hid, enter=enter,
                      builds={a: [*nest, *_register_then(line), "podman"] for a, line in lines.items()})
        else:
            yield Env(podman=["podman"], holder=hid)
    finally:
        _release(hid)
