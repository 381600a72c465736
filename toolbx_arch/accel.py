"""Acceleration (``tbx create --accelerate``): the host's own cross toolchain and build tools run
natively inside a foreign container, while ``uname``, the package manager, the interpreters and
every program the build makes stay foreign, and the output is the emulated toolchain's.

Where the native tools come from: an image of the container's own distribution and release for
this host's arch (the image index the container came from), with that distribution's cross
toolchain for the container's arch installed (``localhost/tbx-accel:...``), built once by tbx and
reused, its files extracted once under tbx's data directory. Nothing is written into the
container's image: the native files reach the container as read-only, non-recursive binds,
over the image's own names (``/usr/bin/<triplet>-gcc-N`` and the other triplet-named tools, the
compiler's internals in ``/usr/libexec/gcc/<triplet>/N``, ``dash``, ``bash``, ``make``, ``sed``, ``grep``,
``mawk``, ``m4``, findutils, diffutils and the coreutils except ``uname``, ``arch`` and ``stdbuf``) or at
paths a foreign root does not have (the x86_64 loader and libraries, ``/usr/lib/gcc-cross``,
``/usr/libexec/gcc-cross``, ``/usr/<triplet>/bin``).

The promise is the same output: the cross compiler must be built from the same compiler source
revision as the container's own (``14.2.0-19`` and ``14.2.0-19cross1`` match; ``12.2.0-14+deb12u1``
and ``12.2.0-14cross1`` do not), and binutils must be the same version. Otherwise acceleration is
refused, naming both, unless asked for anyway (``--accelerate-unmatched``), which the container's
label records (``tbx list``, ``tbx check``).

Debian family only (dpkg, Debian's cross toolchain packages).
"""

from __future__ import annotations

import json
import os
import re

from . import runner
from .arch import Arch
from .errors import EXIT_ENGINE, TbxError

LABEL = "io.github.tbx.accelerated"   # "matched: …" or "unmatched: …" (what runs natively, from where)
# tbx arch -> (Debian arch, GNU triplet) of the architectures Debian builds cross toolchains for
DEBIAN = {"aarch64": ("arm64", "aarch64-linux-gnu"), "ppc64le": ("ppc64el", "powerpc64le-linux-gnu"),
          "s390x": ("s390x", "s390x-linux-gnu"), "riscv64": ("riscv64", "riscv64-linux-gnu"),
          "armv7": ("armhf", "arm-linux-gnueabihf")}
TOOL_PACKAGES = ("dash", "bash", "make", "sed", "grep", "mawk", "m4", "findutils", "diffutils", "coreutils")
# What bash reports as $HOSTTYPE and $MACHTYPE: its build's GNU type. Native bash takes them from
# the environment when they are set there, so the container's environment says the container's.
BASH_TYPES = {"aarch64": ("aarch64", "aarch64-unknown-linux-gnu"),
              "ppc64le": ("powerpc64le", "powerpc64le-unknown-linux-gnu"),
              "s390x": ("s390x", "s390x-ibm-linux-gnu"), "riscv64": ("riscv64", "riscv64-unknown-linux-gnu"),
              "armv7": ("arm", "arm-unknown-linux-gnueabihf")}
FOREIGN = {"uname", "arch", "stdbuf"}   # ask the kernel for the machine, or preload a foreign library
GCC_INTERNALS = ("cc1", "cc1plus", "collect2", "lto1", "lto-wrapper", "liblto_plugin.so", "g++-mapper-server")
BINUTILS = ("addr2line", "ar", "as", "c++filt", "dwp", "elfedit", "gold", "gprof", "ld", "ld.bfd", "ld.gold", "nm",
            "objcopy", "objdump", "ranlib", "readelf", "size", "strings", "strip")
MODES = ("matched", "unmatched")
PACKAGES_LABEL = "io.github.tbx.accel-packages"   # of a tools image: the packages it was built with


def mode(value: str | None) -> str | None:
    """``--accelerate`` ("matched"), ``--accelerate-unmatched`` or ``--no-accelerate`` ("no"), or the
    configuration's ``accelerate``, as a mode (None: no acceleration)."""
    if value in (None, "", "no", "false"):
        return None
    if value in ("yes", "true"):
        return "matched"
    if value not in MODES:
        raise TbxError(f"accelerate={value!r} is not one of true, false, \"unmatched\"",
                       fix="accelerate = true (the compiler must match), or \"unmatched\" for development builds")
    return value


def _status(text: str) -> dict[str, str]:
    """{package: version} of the installed packages in a dpkg status file."""
    out = {}
    for para in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", para, re.M))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            out[fields["Package"]] = fields.get("Version", "")
    return out


class ImageFacts:
    """What the container's image has: installed packages, regular files in /usr/bin, and the
    compiler's internals, read from the image without running it."""

    def __init__(self, packages: dict[str, str], bins: set[str], internals: set[str]) -> None:
        self.packages, self.bins, self.internals = packages, bins, internals

    def gcc(self) -> int | None:
        """The newest gcc-N installed."""
        got = [int(m.group(1)) for p in self.packages if (m := re.fullmatch(r"gcc-(\d+)", p))]
        return max(got) if got else None


_READ = r'''
p=$(podman image mount "$1") || exit 3
cat "$p/var/lib/dpkg/status" 2>/dev/null; printf '\036\n'
find "$p/usr/bin/" -maxdepth 1 -type f -printf '%f\n'; printf '\036\n'
for d in lib libexec; do find "$p/usr/$d/gcc/$2/" -mindepth 2 -maxdepth 2 -printf "$d/%P\n" 2>/dev/null; done
podman image unmount "$1" >/dev/null 2>&1
true
'''


def image_facts(image: str, triplet: str) -> ImageFacts:
    argv = ["sh", "-c", _READ, "sh", image, triplet]
    if os.geteuid() != 0:
        argv = ["podman", "unshare", *argv]
    r = runner.run(argv, timeout=120)
    parts = r.stdout.split("\x1e\n")
    if r.returncode != 0 or len(parts) < 3:
        raise TbxError(f"could not read the packages of {image}", details=(r.stderr or r.stdout).strip()[-600:],
                       exit_code=EXIT_ENGINE)
    return ImageFacts(_status(parts[0]), set(parts[1].split()), set(parts[2].split()))


# The cross compiler then looks for its own headers and start files under the native compiler's
# paths (the driver passes -iprefix, cc1 relocates its include directory): the container's
# /usr/lib/gcc/<triplet>/N, the same files, so the debug info names what the emulated compiler names.
ENV = {"GCC_EXEC_PREFIX": "/usr/lib/gcc/"}


def environment(arch: str) -> dict[str, str]:
    """The environment of an accelerated container of ``arch``: ``ENV``, native bash's
    ``HOSTTYPE`` and ``MACHTYPE`` as the container's own bash says them, and ``TBX_SUDO_KEEP``,
    the names tbx-init asks sudo to keep (sudo resets the environment otherwise)."""
    hosttype, machtype = BASH_TYPES[arch]
    env = {**ENV, "HOSTTYPE": hosttype, "MACHTYPE": machtype}
    return {**env, "TBX_SUDO_KEEP": " ".join(sorted(env))}


class Plan:
    """The binds of an accelerated container, its environment, and what its label says."""

    def __init__(self, binds: list[tuple[str, str]], label: str, matched: bool, summary: str, arch: str) -> None:
        self.binds, self.label, self.matched, self.summary = binds, label, matched, summary
        self.env = environment(arch)


def _revision(version: str) -> str:
    """A cross package's version without its ``crossN`` suffix: the source revision it was built from."""
    return re.sub(r"cross\d+$", "", version)


def compare(native: dict[str, str], cross: dict[str, str], a_triplet: str, n: int) -> list[str]:
    """What differs between the container's own toolchain (``native``: its packages) and the
    cross one (``cross``); [] when the same source revisions."""
    diffs = []
    pairs = [(f"gcc-{n}", f"gcc-{n}-{a_triplet}"), (f"binutils-{a_triplet}", f"binutils-{a_triplet}")]
    if f"g++-{n}" in native:
        pairs.append((f"g++-{n}", f"g++-{n}-{a_triplet}"))
    for own, other in pairs:
        mine, theirs = native.get(own), cross.get(other)
        if theirs is None:
            diffs.append(f"{other} is not in the native tools")
        elif mine is None or _revision(theirs) != mine:
            diffs.append(f"{own} {mine or 'missing'} here, {other} {theirs} natively")
    return diffs


def tools_image(base: str, a: Arch, n: int, with_gxx: bool) -> str:
    """``localhost/tbx-accel:...``: ``base`` (this host's variant of the container's image) with
    the cross toolchain for ``a`` and the build tools, built once."""
    deb, triplet = DEBIAN[a.name]
    tag = f"localhost/tbx-accel:{re.sub(r'[^A-Za-z0-9_.-]', '-', base.rpartition('/')[2])}-{deb}-gcc{n}"
    pkgs = [f"gcc-{n}-{triplet}", f"cpp-{n}-{triplet}", f"binutils-{triplet}", *TOOL_PACKAGES]
    if with_gxx:
        pkgs.append(f"g++-{n}-{triplet}")
    # built before with these packages (an image from an older tbx, with fewer tools, is rebuilt)
    r = runner.run(["podman", "image", "inspect", "--format", f'{{{{index .Labels "{PACKAGES_LABEL}"}}}}', tag],
                   timeout=60)
    if r.returncode == 0 and set(pkgs) <= set(r.stdout.split()):
        return tag
    old = runner.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], timeout=60).stdout.strip()
    containerfile = (f"FROM {base}\n"
                     "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                     f"--no-install-recommends {' '.join(pkgs)} && apt-get clean && rm -rf /var/lib/apt/lists/*\n")
    from . import output

    output.note(f"building the native tools for {a.name} once ({tag}: {pkgs[0]} and the build tools)")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tbx-accel-") as context:
        r = runner.run(["podman", "build", "--pull=never", "--network", "host", "--tag", tag,
                        "--label", f"io.github.tbx.accel-base={base}", "--label", f"{PACKAGES_LABEL}={' '.join(pkgs)}",
                        "-f", "-", context], input=containerfile,
                       timeout=3600)
    if r.returncode != 0:
        raise TbxError(f"could not build the native tools {tag} from {base}", details=r.stderr.strip()[-800:],
                       fix=f"Check that {base} can install {pkgs[0]} (apt-get, the network)", exit_code=EXIT_ENGINE)
    if old:  # the older build, untagged now (its extracted files stay until no container binds them: _prune)
        runner.run(["podman", "rmi", old], timeout=120)
    return tag


def tools_facts(tag: str, triplet: str, n: int) -> tuple[dict[str, str], list[str]]:
    """({package: version} of the cross toolchain, the coreutils programs) of the tools image."""
    r = runner.run(["podman", "run", "--rm", "--network", "none", tag, "sh", "-c",
                    "dpkg-query -W -f '${Package} ${Version}\\n'; printf '\\036\\n'; dpkg-query -L coreutils"],
                   timeout=300)
    if r.returncode != 0:
        raise TbxError(f"could not read the packages of {tag}", details=r.stderr.strip()[-600:], exit_code=EXIT_ENGINE)
    head, _, files = r.stdout.partition("\x1e\n")
    pkgs = dict(line.split(" ", 1) for line in head.splitlines() if " " in line)
    coreutils = [os.path.basename(f) for f in files.split() if f.startswith(("/usr/bin/", "/bin/"))]
    return pkgs, coreutils


def extracted(tag: str) -> str:
    """The tools image's files, extracted once (read by the binds): tbx's data directory/accel/ID."""
    from . import paths

    iid = runner.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], timeout=60).stdout.strip()[:12]
    top = os.path.join(paths.data_dir(), "accel")
    dest = os.path.join(top, iid)
    if os.path.isdir(dest):
        return dest
    os.makedirs(top, mode=0o755, exist_ok=True)
    import shutil
    import subprocess
    import tempfile

    tmp = tempfile.mkdtemp(dir=top, prefix=".new-")
    os.chmod(tmp, 0o755)
    cid = runner.run(["podman", "create", tag, "true"], timeout=120).stdout.strip()
    try:
        exp = runner.popen(["podman", "export", cid], stdout=subprocess.PIPE)
        skip = ["dev", "proc", "sys", "run", "tmp", "var", "home", "root", "boot", "mnt", "media", "srv", "opt",
                "usr/share", "usr/include", "usr/local"]
        tar = runner.run(["tar", "-x", "-C", tmp, "--no-same-owner", "--no-same-permissions", "-f", "-",
                          *(f"--exclude=./{d}" for d in skip), *(f"--exclude={d}" for d in skip)], stdin=exp.stdout)
        exp.stdout.close()
        if exp.wait() != 0 or tar.returncode != 0:
            raise TbxError(f"could not extract the native tools of {tag}", details=tar.stderr[-600:],
                           exit_code=EXIT_ENGINE)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        runner.run(["podman", "rm", "-f", cid], timeout=120)
    return dest


def stale(top: str, entries: list[str], image_ids: list[str], sources: list[str]) -> list[str]:
    """The directories of ``top`` (tools extracted from an image) that no image has any more and
    no container binds (``sources``: every container's mount sources). Half-made ones (``.new-``:
    another tbx may be extracting) stay."""
    ids = {i.removeprefix("sha256:")[:12] for i in image_ids}
    used = set()
    for src in sources:
        for t in {top, os.path.realpath(top)}:
            if src.startswith(t + "/"):
                used.add(src[len(t) + 1:].split("/", 1)[0])
    return [e for e in entries if not e.startswith(".") and e not in ids and e not in used]


def _prune(top: str) -> None:
    """Remove the tools of older builds (a rebuild untags them) once no container binds them;
    run whenever an accelerated container is made. Nothing goes when podman cannot say what is
    in use."""
    entries = os.listdir(top)
    if len(entries) < 2:
        return
    images = runner.run(["podman", "images", "-a", "-q", "--no-trunc"], timeout=60)
    ctrs = runner.run(["podman", "ps", "-a", "-q"], timeout=60)
    if images.returncode != 0 or ctrs.returncode != 0:
        return
    sources: list[str] = []
    if ctrs.stdout.split():
        r = runner.run(["podman", "container", "inspect", "--format",
                        '{{range .Mounts}}{{.Source}}{{"\\n"}}{{end}}', *ctrs.stdout.split()], timeout=120)
        if r.returncode != 0:  # (a container removed meanwhile: try again next time)
            return
        sources = r.stdout.split("\n")
    import shutil

    for e in stale(top, entries, images.stdout.split(), sources):
        shutil.rmtree(os.path.join(top, e), ignore_errors=True)


def _real(root: str, path: str) -> str | None:
    """``path`` inside the extracted tools (links resolved there), or None when it is not a file."""
    from .emulators import resolve_in_root
    from pathlib import Path

    try:
        real = resolve_in_root(Path(root), path)
    except TbxError:
        return None
    host = os.path.join(root, real.lstrip("/"))
    return host if os.path.isfile(host) else None


def binds(root: str, facts: ImageFacts, triplet: str, n: int, coreutils: list[str]) -> list[tuple[str, str]]:
    """(tools file, container path) pairs: new paths for the loader, libraries and the cross
    toolchain's own directories; the image's own names for what runs natively instead."""
    out: list[tuple[str, str]] = []
    loader = _real(root, "/lib64/ld-linux-x86-64.so.2")
    if loader is None:
        raise TbxError("the native tools have no x86_64 loader (/lib64/ld-linux-x86-64.so.2)")
    out.append((loader, "/lib64/ld-linux-x86-64.so.2"))
    # (/usr/<triplet>/include/c++: the C++ headers of the same gcc source revision, where the cross
    # compiler looks for them; never /usr/<triplet>/include itself, whose C library headers are the
    # cross package's, not the container's)
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/gcc-cross", "/usr/libexec/gcc-cross", f"/usr/{triplet}/bin",
              f"/usr/{triplet}/include/c++"):
        if os.path.isdir(os.path.join(root, d.lstrip("/"))):
            out.append((os.path.join(root, d.lstrip("/")), d))
    names = [f"{triplet}-{t}" for t in ("gcc", "g++", "cpp", "gcc-ar", "gcc-nm", "gcc-ranlib", "gcov", "gcov-dump",
                                        "gcov-tool", "lto-dump")]
    names = [f"{x}-{n}" for x in names] + [f"{triplet}-{t}" for t in BINUTILS]
    names += ["dash", "bash", "make", "sed", "grep", "mawk", "m4", "find", "xargs", "diff", "diff3", "sdiff", "cmp"]
    names += [c for c in coreutils if c not in FOREIGN]
    seen = set()
    for name in names:
        if name in seen or name not in facts.bins:  # only what the image has: nothing new appears
            continue
        seen.add(name)
        src = _real(root, f"/usr/bin/{name}")
        if src is not None:
            out.append((src, f"/usr/bin/{name}"))
    for name in GCC_INTERNALS:  # in libexec (gcc >= 13 on Debian) or lib: wherever the image has them
        for d in ("libexec", "lib"):
            if f"{d}/{n}/{name}" in facts.internals:
                src = _real(root, f"/usr/libexec/gcc-cross/{triplet}/{n}/{name}") or \
                    _real(root, f"/usr/lib/gcc-cross/{triplet}/{n}/{name}")
                if src is not None:
                    out.append((src, f"/usr/{d}/gcc/{triplet}/{n}/{name}"))
    return out


def prepare(a: Arch, image: str, source: str, host_arch: Arch, how: str, *, authfile: str | None,
            tls_verify: bool | None) -> Plan:
    """The plan for a container of ``a`` from the local ``image`` (pulled from ``source``):
    checks, builds the native tools when needed, and refuses (unless ``how`` is unmatched) when
    the compilers' source revisions differ."""
    if a.name not in DEBIAN or host_arch.name != "x86_64":
        raise TbxError(f"--accelerate needs an x86_64 host and an arch Debian cross-compiles for "
                       f"({', '.join(DEBIAN)}); this is {a.name} on {host_arch.name}",
                       fix="Leave out --accelerate")
    deb, triplet = DEBIAN[a.name]
    facts = image_facts(image, triplet)
    if "dpkg" not in facts.packages:
        raise TbxError(f"--accelerate works with Debian-family images (dpkg, Debian's cross toolchains); {image} "
                       "has no dpkg", fix="Leave out --accelerate, or use a Debian or Ubuntu image")
    n = facts.gcc()
    if n is None:
        raise TbxError(f"{image} has no gcc: acceleration replaces the image's own compiler, so it needs one",
                       fix="Build an image with build-essential first (tbx build … RUN apt-get install -y "
                           "build-essential), then create from it with --accelerate")
    from . import images, progress

    base_img = images.inspect_local(source)
    if base_img is None or base_img.architecture != host_arch.oci_arch:
        with progress.pull(f"Pulling {source} for {host_arch.name} (the base of the native tools)") as shown:
            _, base_img, _ = images.pull(source, host_arch, authfile=authfile, tls_verify=tls_verify, **shown)
    tag = tools_image(base_img.name, a, n, f"g++-{n}" in facts.packages)
    cross, coreutils = tools_facts(tag, triplet, n)
    diffs = compare(facts.packages, cross, triplet, n)
    own, theirs = facts.packages.get(f"gcc-{n}"), cross.get(f"gcc-{n}-{triplet}")
    summary = f"native gcc {theirs} (cross, from {base_img.name}) for gcc {own}"
    if diffs and how != "unmatched":
        raise TbxError(f"the native compiler is not built from the same source revision as {image}'s own: "
                       + "; ".join(diffs),
                       details="The same upstream version is not enough: a distribution's own compiler may carry "
                               "fixes its cross compiler lacks (Debian 12: CVE-2023-4039 in gcc 12.2.0-14+deb12u1), "
                               "so the output would differ.",
                       fix="Use a release whose native and cross compilers match (Debian 13), or, for development "
                           "builds only: --accelerate-unmatched")
    root = extracted(tag)
    _prune(os.path.dirname(root))
    label = ("matched: " if not diffs else "unmatched: ") + summary + ("" if not diffs else f" ({'; '.join(diffs)})")
    return Plan(binds(root, facts, triplet, n, coreutils), label, not diffs, summary, a.name)


def describe(label: str | None) -> dict | None:
    """A container's ``LABEL`` as tbx list and tbx check show it: {"matched", "what"}, or None."""
    if not label:
        return None
    state, _, what = label.partition(": ")
    return {"matched": state == "matched", "what": what}


def available(arches: list[str], host_arch: Arch) -> dict[str, dict]:
    """For tbx check, per arch: can it be accelerated here, the native tools already built for it,
    and the accelerated containers of that arch (each matched or not). Two podman calls in all."""
    out = {a: {"available": False, "tools": [], "containers": [],
               "why": "Debian cross-compiles for " + ", ".join(DEBIAN) + " from x86_64 only"}
           for a in arches if a not in DEBIAN or host_arch.name != "x86_64"}
    todo = [a for a in arches if a not in out]
    if not todo:
        return out
    r = runner.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/tbx-accel"], timeout=60)
    tags = r.stdout.split() if r.returncode == 0 else []
    r = runner.run(["podman", "ps", "-a", "--filter", f"label={LABEL}", "--format", "json"], timeout=60)
    rows = json.loads(r.stdout or "[]") if r.returncode == 0 else []
    for a in todo:
        deb = DEBIAN[a][0]
        made = []
        for c in rows:
            labels = c.get("Labels") or {}
            if labels.get("io.github.tbx.arch") == a:
                made.append({"name": (c.get("Names") or ["?"])[0], **describe(labels.get(LABEL))})
        out[a] = {"available": True, "why": None, "containers": made,
                  "tools": sorted(t for t in tags if re.search(rf"-{deb}-gcc\d+$", t))}
    return out
