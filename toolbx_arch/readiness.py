"""Host readiness: can this machine run containers of a given architecture, and if not, why and
what to run (the host's prerequisites, then per arch: its mode, its binfmt_misc entries, and the
emulator ``emulators.find_emulator`` picks). Returns data only; ``output`` renders it, and
``commands/check`` adds the rows of arches mapped to a podman connection.

Everything the checks read can be redirected for tests: ``root`` (filesystem root: emulators,
os-release, subuid files, containers.conf), ``proc`` (binfmt_misc mount), ``kernel`` (release
string), ``host_machine`` and ``tools`` (program -> version, or None when absent).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import arch as archmod
from . import binfmt, hostinfo
from .arch import Arch
from .binfmt import CREDENTIALS_FIX, HOST_ENTRY_FIX, binfmt_mode
from .emulators import Emulator, find_emulator
from .errors import TbxError

SCHEMA_VERSION = 1


@dataclass
class Problem:
    problem: str
    fix: str


@dataclass
class ArchReport:
    arch: str
    oci_arch: str
    platform: str
    mode: str                       # native | compat | emulated
    ready: bool = False
    emulator: Emulator | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    host_binfmt: list[dict] = field(default_factory=list)
    binfmt_mode: str = "private"    # how an emulated arch is run: private registration or a host entry
    host_entry: str | None = None   # host mode: the host's binfmt_misc entry used
    where: dict = field(default_factory=dict)   # {"kind": "local", "mode"} or {"kind": "remote", …node state}
    accelerate: dict | None = None  # emulated arches: acceleration (accel.available), added by tbx check


@dataclass
class HostReport:
    arch: str
    kernel: str
    kernel_ok: bool
    distro: str
    family: str
    user: str
    rootless: bool
    userns: dict
    podman: str | None
    skopeo: str | None
    oci_runtime: str | None
    binfmt_misc: str
    binfmt_entries: dict = field(default_factory=dict)   # {"total": n, "enabled": n}
    problems: list[Problem] = field(default_factory=list)
    binfmt_mode: str = "private"    # private (own registration per container) or host (the host's entries)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Report:
    host: HostReport
    arches: list[ArchReport]
    ready: bool
    schema: int = SCHEMA_VERSION

    def as_dict(self) -> dict:
        d = asdict(self)
        d["host"]["ok"] = self.host.ok
        return {"schema": d["schema"], "ready": d["ready"], "host": d["host"], "arches": d["arches"]}


def check_host(*, root: Path = Path("/"), proc: Path = binfmt.PROC_BINFMT, kernel: str | None = None,
               host_machine: str | None = None, tools: dict | None = None, uid: int | None = None,
               user: str | None = None, home: Path | None = None, max_userns: int | None = None,
               os_release: dict[str, str] | None = None, binfmt_setting: str | None = None) -> HostReport:
    host_arch = archmod.host(host_machine)
    rel = hostinfo.os_release() if os_release is None else os_release
    fam = hostinfo.family(rel)
    kernel = kernel if kernel is not None else os.uname().release
    uid = os.getuid() if uid is None else uid
    if user is None:
        try:
            pw = pwd.getpwuid(uid)
            user, home = pw.pw_name, home or Path(pw.pw_dir)
        except KeyError:
            user = str(uid)
    tools = hostinfo.tool_versions() if tools is None else tools
    problems: list[Problem] = []

    kernel_ok = hostinfo.kernel_has_binfmt_userns(kernel)
    mode = binfmt_mode(binfmt_setting, kernel_ok)
    if not kernel_ok and mode == "private":
        problems.append(Problem(
            f"kernel {kernel} is older than 6.7: it has no binfmt_misc per user namespace, so "
            "emulated containers cannot register their emulator privately",
            "Upgrade to Linux 6.7 or newer (the distribution's current kernel package)"))

    if max_userns is None:
        try:
            max_userns = int((root / "proc/sys/user/max_user_namespaces").read_text())
        except (OSError, ValueError):
            max_userns = -1
    rootless = uid != 0
    userns: dict = {"max_user_namespaces": max_userns}
    if max_userns == 0:
        problems.append(Problem("user namespaces are disabled (user.max_user_namespaces = 0)",
                                "sudo sysctl -w user.max_user_namespaces=28633"))
    if rootless:
        subuid = hostinfo.subid_ranges(user, uid, root / "etc/subuid")
        subgid = hostinfo.subid_ranges(user, uid, root / "etc/subgid")
        userns.update(subuid=subuid, subgid=subgid, layout="keep-id")
        if not subuid or not subgid:
            problems.append(Problem(
                f"user {user} has no subordinate {'uid' if not subuid else 'gid'} range, so rootless "
                "podman cannot make a user namespace",
                f"sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"))
        if not any((root / d.lstrip("/") / "newuidmap").exists() for d in ("/usr/bin", "/bin", "/usr/sbin")):
            problems.append(Problem("newuidmap is not installed (rootless podman needs it)",
                                    hostinfo.install_command("newuidmap", fam=fam)))
    else:
        userns.update(layout="auto", auto_subuid=hostinfo.subid_ranges("containers", -1, root / "etc/subuid"))
        if not userns["auto_subuid"]:  # podman --userns auto takes its ids from the user "containers"
            problems.append(Problem(
                "root's containers map their root to subordinate ids (--userns auto), and /etc/subuid has none "
                "for the user 'containers'",
                "sudo useradd --system --no-create-home containers; sudo usermod --add-subuids 1000000-1999999 "
                "--add-subgids 1000000-1999999 containers"))

    for tool in ("podman", "skopeo"):
        if not tools.get(tool):
            why = "containers" if tool == "podman" else "pulling foreign-architecture images"
            problems.append(Problem(f"{tool} is not installed (needed for {why})",
                                    hostinfo.install_command(tool, fam=fam)))

    return HostReport(
        arch=host_arch.name, kernel=kernel, kernel_ok=kernel_ok,
        distro=rel.get("PRETTY_NAME", rel.get("ID", "unknown")), family=fam,
        user=user, rootless=rootless, userns=userns,
        podman=tools.get("podman"), skopeo=tools.get("skopeo"),
        oci_runtime=hostinfo.oci_runtime(root, home if rootless else None),
        binfmt_misc=binfmt.read_status(proc), problems=problems,
        binfmt_entries={"total": len(entries := binfmt.read_entries(proc)),
                        "enabled": sum(e.enabled for e in entries)}, binfmt_mode=mode)


def check_arch(a: Arch, host: HostReport, *, root: Path = Path("/"), proc: Path = binfmt.PROC_BINFMT,
               search: tuple[str, ...] = (), entries: list[binfmt.Entry] | None = None,
               host_places: bool = True) -> ArchReport:
    host_arch = archmod.resolve(host.arch)
    m = archmod.mode(a, host_arch)
    rep = ArchReport(arch=a.name, oci_arch=a.oci_arch, platform=a.platform, mode=m)
    entries = binfmt.read_entries(proc) if entries is None else entries
    mine = binfmt.entries_for(a, entries)
    for e in mine:
        rep.host_binfmt.append(e.as_dict())
        if e.enabled and not e.has_credentials and m == "emulated" and host.binfmt_mode != "host":
            rep.notes.append(f"the host's binfmt entry {e.name} lacks the C flag: under tools that use it, "
                             "setuid programs such as sudo fail ('effective uid is not 0'); tbx does not use it")
    if m == "emulated" and host.binfmt_mode == "host":
        _host_mode(rep, a, mine, host)
    elif m != "emulated":
        rep.notes.append(f"{a.name} runs {'natively' if m == 'native' else 'in compat mode'} on this "
                         f"{host_arch.name} host: no emulator needed")
    else:
        emu = find_emulator(a, host_arch, root, search, host.family, host_places)
        rep.emulator = emu
        if emu is None:
            rep.problems.append(Problem(f"no QEMU user-mode emulator for {a.name} ({a.qemu_binary}) was found"
                                        + ("" if host_places else " (host_emulators = false: only "
                                           "emulator_paths and pulled emulators count)"),
                                        f"{hostinfo.install_command('qemu', fam=host.family)}; or, with no root: "
                                        "tbx emulator pull IMAGE"))
        elif emu.problem:
            rep.problems.append(Problem(emu.problem, emu.fix or ""))
        if not host.kernel_ok:
            rep.problems.append(Problem(f"kernel {host.kernel} < 6.7: no private binfmt_misc for the container",
                                        "Upgrade to Linux 6.7 or newer"))
    rep.ready = not rep.problems and host.ok
    return rep


def _host_mode(rep: ArchReport, a: Arch, mine: list[binfmt.Entry], host: HostReport) -> None:
    """Host mode (kernels < 6.7, or forced): the host's own enabled entry with the F flag among
    ``mine`` (the entries for ``a``) runs the container's programs; tbx only reads it (it never
    writes the host's binfmt_misc)."""
    rep.binfmt_mode = "host"
    usable = [e for e in mine if e.enabled and "F" in e.flags]
    if not usable:
        fix = HOST_ENTRY_FIX.get(host.family, "Install your distribution's qemu-user-static with its binfmt "
                                              "registrations and enable {name}")
        rep.problems.append(Problem(
            f"no usable host binfmt_misc entry for {a.name}: host mode needs one that is enabled and has the "
            "F flag (tbx never writes the host's binfmt_misc)", fix.format(name=a.binfmt_name)))
        return
    e = usable[0]
    rep.host_entry = e.name
    rep.notes.append(f"host mode: the host's binfmt_misc entry {e.name} (flags {e.flags}, interpreter "
                     f"{e.interpreter}) runs {a.name} programs; no private registration")
    if not e.has_credentials:
        how = CREDENTIALS_FIX["debian" if host.family == "debian" else "other"].format(name=e.name)
        rep.notes.append(f"the host's binfmt entry {e.name} lacks the C flag: sudo inside fails "
                         f"('effective uid is not 0'). To fix it, {how}")


def check(arch_names: list[str] | None = None, *, search: tuple[str, ...] = (), host_places: bool = True,
          **host_kw) -> Report:
    """The whole report. With ``arch_names``: those arches, ready = all of them ready; without:
    every known arch, ready = the host-wide prerequisites hold."""
    root = host_kw.get("root", Path("/"))
    proc = host_kw.get("proc", binfmt.PROC_BINFMT)
    wanted = [archmod.resolve(n) for n in arch_names] if arch_names else list(archmod.ARCHES)
    seen: list[Arch] = []
    for a in wanted:
        if a not in seen:
            seen.append(a)
    host = check_host(**host_kw)
    entries = binfmt.read_entries(proc)
    reports = [check_arch(a, host, root=root, proc=proc, search=search, entries=entries, host_places=host_places)
               for a in seen]
    for r in reports:
        r.where = {"kind": "local", "mode": r.mode}
    ready = all(r.ready for r in reports) if arch_names else host.ok
    return Report(host=host, arches=reports, ready=ready)


def require_ready(a: Arch, *, search: tuple[str, ...] = (), host_places: bool = True,
                  binfmt_setting: str | None = None) -> ArchReport:
    """For create/enter/run: the arch's report, or a TbxError with the first problem and its fix."""
    host = check_host(tools={"podman": "present", "skopeo": "present"}, binfmt_setting=binfmt_setting)
    rep = check_arch(a, host, search=search, host_places=host_places)
    problems = rep.problems + [p for p in host.problems if p not in rep.problems]
    if problems:
        p = problems[0]
        raise TbxError(f"this host cannot run {a.name} containers: {p.problem}", fix=p.fix,
                       details="Run 'tbx check --arch %s' for the full picture" % a.name)
    return rep

