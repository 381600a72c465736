"""Host readiness: can this machine run containers of a given architecture, and if not, why and
what to run. Returns data only; ``output`` renders it.

Everything the checks read can be redirected for tests: ``root`` (filesystem root: emulators,
os-release, subuid files, containers.conf), ``proc`` (binfmt_misc mount), ``kernel`` (release
string), ``host_machine`` and ``tools`` (program -> version, or None when absent).
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import arch as archmod
from . import binfmt, hostinfo
from .arch import Arch
from .errors import TbxError

SCHEMA_VERSION = 1
CONTAINER_HOST_PREFIX = "/run/host"


@dataclass
class Problem:
    problem: str
    fix: str


@dataclass
class Emulator:
    path: str                 # where it was found, as seen on the host
    real_path: str            # symlinks resolved (on the host)
    in_container: str         # the path the container sees through /run/host
    static: bool | None = None
    e_machine: int | None = None
    built_for: str | None = None
    executable: bool = False
    problem: str | None = None
    fix: str | None = None
    pulled: str | None = None     # the pulled emulator (tbx emulator pull) it belongs to
    version: str | None = None    # its QEMU version, when recorded


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


DEFAULT_SEARCH = ("/usr/bin", "/usr/local/bin", "/bin", "/usr/libexec/qemu-binfmt", "/usr/lib/qemu-user-static")


def _under(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def resolve_in_root(root: Path, path: str, depth: int = 0) -> str:
    """Resolve symlinks of an absolute ``path`` as seen from ``root`` (absolute links stay in it)."""
    if depth > 40:
        raise TbxError(f"too many levels of symbolic links at {path}")
    parts = [p for p in path.split("/") if p]
    done = "/"
    for i, part in enumerate(parts):
        cand = os.path.join(done, part)
        host_p = _under(root, cand)
        if host_p.is_symlink():
            target = os.readlink(host_p)
            nxt = target if target.startswith("/") else os.path.normpath(os.path.join(done, target))
            rest = "/".join(parts[i + 1:])
            return resolve_in_root(root, os.path.join(nxt, rest) if rest else nxt, depth + 1)
        done = os.path.normpath(cand)
    return done


def candidate_paths(a: Arch, search: tuple[str, ...] = (), host_places: bool = True) -> list[str]:
    """Where an emulator of ``a`` may be, in order: ``search`` (emulator_paths, then pulled
    emulators, newest QEMU first), then, unless ``host_places`` is off, PATH and the places
    distributions install qemu-user-static."""
    dirs = list(search)
    if host_places:
        dirs += [d for d in os.environ.get("PATH", "").split(":") if d.startswith("/")] + list(DEFAULT_SEARCH)
    names = (a.qemu_binary, f"qemu-{a.qemu}", f"{a.qemu}-binfmt-P")
    seen, out = set(), []
    for d in dirs:
        for n in names:
            p = os.path.normpath(os.path.join(d, n))
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def inspect_emulator(path: str, a: Arch, host_arch: Arch, root: Path, fam: str) -> Emulator:
    from . import elf

    real = resolve_in_root(root, path)
    emu = Emulator(path=path, real_path=real, in_container=CONTAINER_HOST_PREFIX + real)
    host_p = _under(root, real)
    install = hostinfo.install_command("qemu", fam=fam)
    try:
        info = elf.read(host_p)
    except TbxError as e:
        emu.problem = f"{path} is not a usable emulator: {e.message}"
        emu.fix = install
        return emu
    emu.static, emu.e_machine = info.is_static, info.e_machine
    built = archmod.by_e_machine(info.e_machine, info.elf_class)
    emu.built_for = built.name if built else f"e_machine {info.e_machine}"
    emu.executable = os.access(host_p, os.X_OK)
    if info.e_machine != host_arch.e_machine:
        emu.problem = (f"{path} is built for {emu.built_for}, not for this {host_arch.name} host, "
                       f"so the kernel cannot run it")
        emu.fix = f"Install the {host_arch.name} build of the emulator: {install}"
    elif not info.is_static:
        emu.problem = (f"{path} is dynamically linked (interpreter {info.interpreter}): inside a "
                       f"{a.name} container its {host_arch.name} libraries do not exist, so it cannot start")
        emu.fix = f"Install the statically linked emulator ({a.qemu_binary}): {install}"
    elif not emu.executable:
        emu.problem = f"{path} is not executable"
        emu.fix = f"sudo chmod 755 {real}"
    if emu.problem is None:
        _trusted_qemu(emu, path, host_p, a, root, install)
    return emu


def _trusted_qemu(emu: Emulator, path: str, host_p: Path, a: Arch, root: Path, install: str) -> None:
    """The checks of a usable-looking emulator that stop tbx registering a file someone else could
    swap, or one that is not QEMU for ``a`` (read from the file: nothing is run to learn it)."""
    from . import emulators, paths

    if root == Path("/"):
        why = paths.untrusted(path)
        if why:  # another user could swap what tbx registers (and what runs setuid inside)
            emu.problem = f"{path} cannot be trusted as an emulator: {why}"
            emu.fix = paths.trust_fix(path, why)
            return
    why = emulators.not_qemu_remembered(str(host_p), a)
    if why:
        emu.problem = f"{path} is {why}"
        emu.fix = install


def find_emulator(a: Arch, host_arch: Arch, root: Path = Path("/"), search: tuple[str, ...] = (),
                  fam: str = "debian", host_places: bool = True) -> Emulator | None:
    """The first usable emulator; if none is usable, the first one found (with its problem)."""
    first = None
    for p in candidate_paths(a, search, host_places):
        hp = _under(root, p)
        try:
            if not (hp.exists() or hp.is_symlink()):
                continue
        except OSError:  # a directory on PATH this user cannot search
            continue
        emu = inspect_emulator(p, a, host_arch, root, fam)
        if emu.problem is None:
            return emu
        first = first or emu
    return first


def _oci_runtime(root: Path, home: Path | None) -> str | None:
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
            if any(_under(root, d + "/" + name).exists() for d in ("/usr/bin", "/usr/local/bin", "/usr/sbin")):
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
    tools = tool_versions() if tools is None else tools
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
        if not any(_under(root, d + "/newuidmap").exists() for d in ("/usr/bin", "/bin", "/usr/sbin")):
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
        oci_runtime=_oci_runtime(root, home if rootless else None),
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


def add_versions(report: Report, pulled: list[dict]) -> None:
    """For ``tbx check``, which shows them: each emulator's pulled name and QEMU version (the
    recorded one of a pulled emulator, ``pulled`` being ``emulators.installed()``, else its
    ``--version``, remembered per file). Not done by ``check_arch``: create does not need it."""
    from . import elf, emulators

    recorded = {m["name"]: m.get("qemu_version") for m in pulled}
    for rep in report.arches:
        emu = rep.emulator
        if emu is None:
            continue
        emu.pulled = emulators.owner_of(emu.real_path)
        if emu.pulled:
            emu.version = recorded.get(emu.pulled)
        elif emu.problem is None:
            emu.version = elf.remembered(emu.real_path, "qemu-version", emulators.qemu_version)


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


def add_nodes(report: Report, plan: dict, states: dict, arch_names: list[str] | None,
              unusable: dict | None = None) -> None:
    """Arches mapped to a podman connection run on that machine: ready when it answers and runs
    that arch natively; its local readiness becomes a note. ``unusable``: {arch: (name, TbxError)} of
    arches mapped to a connection that does not exist (or is not ssh)."""
    from .nodes import wrong_arch

    def on_node(r: ArchReport, where: dict, problem: Problem | None) -> None:
        r.where = {"kind": "remote", **where}
        r.notes += [f"here: {p.problem}" for p in r.problems]
        r.problems = [problem] if problem else []
        r.ready = problem is None

    by_name = {r.arch: r for r in report.arches}
    for a, (name, err) in (unusable or {}).items():
        on_node(by_name[a.name], {"connection": name, "uri": None, "reachable": False, "arch": None, "oci_arch": None,
                                  "podman": None, "error": err.message, "fix": err.fix},
                Problem(err.message, err.fix or ""))
    for a, node in plan.items():
        if a.name not in by_name:
            continue
        s = states[node.name]
        problem = None
        if not s.reachable:
            problem = Problem(s.error, s.fix)
        elif s.arch != a:
            e = wrong_arch(a, s)
            problem = Problem(e.message, e.fix)
        on_node(by_name[a.name], s.as_dict(), problem)
    if arch_names:
        report.ready = all(r.ready for r in report.arches)


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


def parse_cpu_models(text: str) -> list[str]:
    """CPU model names from ``qemu-<arch> -cpu help``, whose layout differs per target: indented
    names (aarch64, arm), one name per line (riscv64), or ``family name  description`` (x86,
    s390x, ppc). The x86 list of CPUID flags that follows the models is not read."""
    models: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.rstrip().endswith(":") and not line.startswith(" "):
            if line.startswith("Recognized"):
                break
            continue
        words = line.split()
        name = words[0] if line.startswith(" ") or len(words) == 1 else words[1]
        if name not in models:
            models.append(name)
    return models


def check_cpu(a: Arch, emulator: str | None, cpu: str, *, host_arch: Arch | None = None) -> str:
    """``cpu`` when the emulator of ``a`` knows that model (``-cpu help``); a TbxError listing the
    models otherwise, or when ``a`` is not emulated (QEMU_CPU would do nothing there)."""
    from . import runner

    if not archmod.needs_emulation(a, host_arch) or not emulator:
        raise TbxError(f"--cpu chooses the CPU model QEMU emulates, and {a.name} runs without emulation here",
                       fix="Leave out --cpu for this arch")
    # Never run unconfined: the emulator may be a pulled or a user's file (QEMU 7.2 exits 1 after the list)
    _, out, err = runner.run_confined(emulator, ["-cpu", "help"], timeout=30)
    models = parse_cpu_models(out)
    if not models:
        raise TbxError(f"{emulator} did not list its CPU models", details=(err or out).strip()[-600:] or None)
    if cpu not in models:
        import textwrap

        raise TbxError(f"{emulator} does not know the CPU model {cpu!r}",
                       details=textwrap.fill("Models: " + ", ".join(models), width=100),
                       fix=f"Pick one of the models above, e.g. --cpu {models[0]}")
    return cpu
