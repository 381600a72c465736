"""A private binfmt_misc registration for the duration of a block, for image builds.

Rootless: the registration goes into the user's own podman user namespace (the one `podman
unshare` enters and the pause process keeps alive), where the kernel (>= 6.7) finds it for every
container of that user. Under a lock in the runtime directory, each running ``tbx build`` is a
holder (PID and start time) of the arches it needs; an arch is registered only when no entry for
it is there, and what tbx added is removed when its last live holder ends. An entry tbx did not
add is never removed.

Root: root's podman runs in the initial user namespace, whose binfmt_misc is the host's. So the
build gets a user namespace of its own (``unshare``, mapped to root's subordinate range), mounts
a fresh instance there, and runs podman inside it against build storage of its own; results are
moved into root's normal storage afterwards.

Never the host's binfmt_misc: the instance is mounted from inside the user namespace, and one
whose device is the host's is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field

from . import binfmt, runner
from .arch import Arch
from .errors import TbxError

BUILD_STORAGE = "/var/lib/tbx/build-storage"
BUILD_RUNROOT = "/run/tbx/build-runroot"

# Runs in the user's podman namespace (rootless) or in the build's own namespace (root).
# $1 mount point; $2 the host instance's device number ("" if none); $3 "fresh" (mount a new
# instance and refuse one with entries) or "reuse" (mount only if nothing is mounted there yet);
# then "list", "reg NAME LINE" and "unreg NAME" operations. "list" prints "== NAME" and the text.
_SCRIPT = r'''
set -u
d=$1; hostdev=$2; mode=$3; shift 3
top=$(awk -v d="$d" '$5 == d { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); break } } END { print t }' /proc/self/mountinfo)
if [ "$mode" = fresh ] || [ "$top" != binfmt_misc ]; then
    mkdir -p "$d" && mount -t binfmt_misc binfmt_misc "$d" || { echo "cannot mount binfmt_misc in this user namespace" >&2; exit 3; }
fi
dev=$(stat -c %d "$d") || exit 3
if [ -n "$hostdev" ] && [ "$dev" = "$hostdev" ]; then
    echo "the binfmt_misc instance at $d is the host's: refusing to register there" >&2; exit 4
fi
if [ "$mode" = fresh ] && [ "$(ls "$d" | tr '\n' ' ')" != "register status " ]; then
    echo "the binfmt_misc instance at $d is not a fresh one: refusing to register there" >&2; exit 4
fi
while [ $# -gt 0 ]; do
    case $1 in
    list) for f in "$d"/*; do n=${f##*/}; case $n in register|status) continue;; esac
              [ -f "$f" ] && { echo "== $n"; cat "$f"; }; done; shift;;
    reg) if [ ! -e "$d/$2" ]; then printf '%s' "$3" > "$d/register" || exit 5; echo "added $2"; fi; shift 3;;
    unreg) if [ -e "$d/$2" ]; then echo -1 > "$d/$2" || exit 5; echo "removed $2"; fi; shift 2;;
    *) echo "unknown operation $1" >&2; exit 2;;
    esac
done
'''


def host_instance_dev() -> str:
    """The device of the host's binfmt_misc mount, if it is mounted where it usually is."""
    try:
        st, parent = os.stat(binfmt.PROC_BINFMT), os.stat(binfmt.PROC_BINFMT.parent)
    except OSError:
        return ""
    return str(st.st_dev) if st.st_dev != parent.st_dev else ""


def parse_listing(text: str) -> list[binfmt.Entry]:
    out, name, lines = [], None, []
    for line in text.splitlines() + ["== "]:
        if line.startswith("== "):
            if name:
                out.append(binfmt.parse_entry(name, "\n".join(lines)))
            name, lines = line[3:].strip(), []
        else:
            lines.append(line)
    return out


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
    """The rootless reference count: live holders and the arches each needs; what tbx added."""
    holders: dict[str, list[str]] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "State":
        try:
            d = json.loads(text) if text.strip() else {}
            return cls({str(k): [str(x) for x in v] for k, v in dict(d.get("holders", {})).items()},
                       [str(x) for x in d.get("added", [])])
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"holders": self.holders, "added": self.added}, sort_keys=True)

    def prune(self, alive=holder_alive) -> None:
        self.holders = {h: v for h, v in self.holders.items() if alive(h)}

    def in_use(self) -> set[str]:
        return {n for v in self.holders.values() for n in v}

    def unused_added(self) -> list[str]:
        used = self.in_use()
        return [n for n in self.added if n not in used]


# A PID namespace of its own for each `podman build`: a RUN step's processes live in a PID
# namespace of their own that outlives an interrupted podman; ending ours kills them all.
PIDNS = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]


@dataclass
class Env:
    """How a build reaches podman: ``podman`` for storage commands, ``build`` for `build`
    (in a PID namespace of its own), and whether results must be moved to the normal storage."""
    podman: list[str]
    build: list[str]
    own_storage: bool = False
    registered: list[str] = field(default_factory=list)  # entry names this build added
    holder: str = ""

    def others_building(self) -> bool:
        """Whether another live `tbx build` of this user shares the build storage now."""
        with _locked() as st:
            st.prune()
            return any(h != self.holder for h in st.holders)


def plain_build() -> list[str]:
    """`podman build`'s prefix in the normal storage (rootless: PID namespaces need the user's
    podman user namespace, so the build runs under `podman unshare`)."""
    return [*PIDNS, "podman"] if os.geteuid() == 0 else ["podman", "unshare", *PIDNS, "podman"]


def _plain_env(hid: str) -> Env:
    return Env(podman=["podman"], build=plain_build(), holder=hid)


def _mountpoint_rootless() -> str:
    from . import status

    return os.path.join(status.runtime_dir(), "tbx", "build", "binfmt")


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


def _unshare_ops(ops: list[str]) -> str:
    r = runner.run(["podman", "unshare", "sh", "-c", _SCRIPT, "tbx-binfmt", _mountpoint_rootless(),
                    host_instance_dev(), "reuse", *ops], timeout=120)
    if r.returncode == 3:
        raise _kernel_refusal(r.stderr)
    if r.returncode != 0:
        raise TbxError("registering the emulator in your podman user namespace failed",
                       details=(r.stderr or r.stdout).strip()[-400:] or None,
                       fix="Run 'podman unshare true' to check that rootless podman works")
    return r.stdout


@contextlib.contextmanager
def _locked():
    fd = os.open(os.path.join(_state_dir(), "lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = os.path.join(_state_dir(), "holders.json")
        try:
            with open(path) as f:
                st = State.parse(f.read())
        except FileNotFoundError:
            st = State()
        try:
            yield st
        finally:  # also when interrupted: what was done to the namespace is recorded
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(st.dump())
            os.replace(tmp, path)
    finally:
        os.close(fd)


def _release(hid: str) -> None:
    """Drop this holder; unregister what tbx added (rootless) and no live holder needs."""
    with _locked() as st:
        st.holders.pop(hid, None)
        st.prune()
        drop = st.unused_added() if os.geteuid() != 0 else []
        if drop:
            _unshare_ops([x for n in drop for x in ("unreg", n)])
            st.added = [n for n in st.added if n not in drop]


def _hold(names: list[str], lines: dict[Arch, str]) -> tuple[str, list[str]]:
    """Become a holder of ``names``; rootless, register those of ``lines`` not there yet."""
    hid = holder_id()
    added: list[str] = []
    with _locked() as st:
        st.prune()
        ops: list[str] = []
        if lines and os.geteuid() != 0:
            present = parse_listing(_unshare_ops(["list"]))
            st.added = [n for n in st.added if any(e.name == n for e in present)]  # gone with a dead namespace
            for a, line in lines.items():
                if a.binfmt_name in st.added or any(e.enabled and e.matches(a) for e in present):
                    continue
                ops += ["reg", a.binfmt_name, line]
        st.holders[hid] = names
        if ops:
            try:
                out = _unshare_ops(ops)
            except BaseException:
                # interrupted or failed half-way: take back whatever of ours got registered
                st.holders.pop(hid, None)
                with contextlib.suppress(TbxError):
                    _unshare_ops([x for i in range(1, len(ops), 3) for x in ("unreg", ops[i])])
                raise
            added = [ln.split()[1] for ln in out.splitlines() if ln.startswith("added ")]
            st.added += [n for n in added if n not in st.added]
    return hid, added


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


@contextlib.contextmanager
def _root(lines: dict[Arch, str]):
    import subprocess

    uids, gids = subordinate_range("root", "/etc/subuid"), subordinate_range("root", "/etc/subgid")
    if not uids or not gids or uids[1] < 65535 or gids[1] < 65535:
        raise TbxError("root has no subordinate id range of 65536 ids for the build's user namespace",
                       fix="echo root:1001000000:65536 >> /etc/subuid; echo root:1001000000:65536 >> /etc/subgid")
    ops = [x for a, line in lines.items() for x in ("reg", a.binfmt_name, line)]
    # The holder: a user and mount namespace of the build's own, alive until tbx closes its stdin.
    script = _SCRIPT + '\necho ready\nread -r _ || true\n'
    holder = runner.popen(["unshare", "--user", "--map-root-user", f"--map-users={uids[0]},1,65535",
                           f"--map-groups={gids[0]},1,65535", "--mount", "--fork", "--kill-child", "--",
                           "sh", "-c", script, "tbx-binfmt", str(binfmt.PROC_BINFMT), host_instance_dev(), "fresh", *ops],
                          die_with_parent=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        added = []
        for line in holder.stdout:
            if line.strip() == "ready":
                break
            if line.startswith("added "):
                added.append(line.split()[1])
        else:
            err = holder.stderr.read()
            holder.wait()
            if holder.returncode == 3:
                raise _kernel_refusal(err)
            raise TbxError("setting up the build's user namespace failed", details=err.strip()[-400:] or None)
        os.makedirs(BUILD_STORAGE, mode=0o700, exist_ok=True)
        os.makedirs(BUILD_RUNROOT, mode=0o700, exist_ok=True)
        # unshare(2) moved the holder itself into the namespaces (its forked child runs the script)
        enter = ["nsenter", "-t", str(holder.pid), "-U", "-m", "--"]
        storage = ["--root", BUILD_STORAGE, "--runroot", BUILD_RUNROOT, "--cgroup-manager", "cgroupfs"]
        yield Env(podman=[*enter, "podman", *storage], build=[*enter, *PIDNS, "podman", *storage],
                  own_storage=True, registered=added)
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


@contextlib.contextmanager
def emulation(lines: dict[Arch, str]):
    """Within the block, ``Env.build`` runs `podman build` where ``lines`` (arch -> registration
    line) are registered privately; with no lines, nothing is registered. Either way the build
    is a holder in the runtime directory for as long as the block runs."""
    hid, added = _hold([a.binfmt_name for a in lines], lines)
    try:
        if lines and os.geteuid() == 0:
            with _root(lines) as env:
                env.holder = hid
                yield env
        else:
            env = _plain_env(hid)
            env.registered = added
            yield env
    finally:
        _release(hid)
