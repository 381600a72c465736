"""Emulators pulled from OCI images (``tbx emulator pull/list/rm``): per user, no root, and no
host package; which file is QEMU for which arch; and which emulator an arch uses here
(``find_emulator``: emulator_paths, pulled emulators, then PATH and the places distributions
install qemu-user-static, each file inspected the way ``tbx check`` reports it).

An image that ships static ``qemu-<arch>`` or ``qemu-<arch>-static`` binaries (the layout of the
common binfmt installer images) is copied for the host's architecture into a temporary OCI
layout. Its layers are read in order, whiteouts included; a qemu member over ``MAX_BYTES`` is not
extracted, and more than ``MAX_TOTAL`` in all stops the pull. Every qemu binary found is checked
the way ``tbx check`` checks one (ELF, static, built for the host, executable, QEMU's version text
for its arch, read from the file), then must print that version when run confined
(``runner.run_confined``): nothing of the image runs on the host otherwise. The good ones go to
``emulators_dir()/<name>/`` (name: the repository and the tag or digest) as ``qemu-<arch>-static``,
with ``emulator.json`` (source, digest, QEMU version, arches). A bad one is not installed, and the
reason is given. Nothing outside that directory changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from dataclasses import dataclass

from . import arch as archmod
from . import hostinfo
from .arch import Arch
from .errors import TbxError

CONTAINER_HOST_PREFIX = "/run/host"  # where a container sees the host's files

META = "emulator.json"
_QEMU = re.compile(r"^qemu-([a-z0-9_]+?)(-static)?$")


def emulators_dir() -> Path:
    """``emulators`` in tbx's data directory (``paths.data_dir``; root: /var/lib/tbx/emulators)."""
    from . import paths

    return Path(paths.data_dir()) / "emulators"


def _version_key(v: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v or "")[:4])


def installed() -> list[dict]:
    """Every pulled emulator's record (plus ``name`` and ``path``), newest QEMU first."""
    out = []
    try:
        dirs = sorted(emulators_dir().iterdir())
    except OSError:
        return []
    for d in dirs:
        try:
            meta = json.loads((d / META).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and isinstance(meta.get("arches"), dict):
            out.append({**meta, "name": d.name, "path": str(d)})
    return sorted(out, key=lambda m: (_version_key(m.get("qemu_version")), m.get("pulled", 0)), reverse=True)


def search_dirs() -> tuple[str, ...]:
    return tuple(m["path"] for m in installed())


def owner_of(path: str) -> str | None:
    """The name of the pulled emulator a host path belongs to, if any."""
    base = str(emulators_dir()) + "/"
    if not path.startswith(base):
        return None
    return path[len(base):].split("/", 1)[0] or None


def resolve_choice(choice: str) -> str:
    """``--emulator NAME|PATH``: the host path of that emulator binary's directory or file."""
    if "/" in choice:
        if not os.path.exists(choice):
            raise TbxError(f"emulator {choice} does not exist", fix="Give the path of a static qemu-ARCH binary")
        return os.path.realpath(choice)
    for m in installed():
        if m["name"] == choice:
            return m["path"]
    names = ", ".join(m["name"] for m in installed()) or "none"
    raise TbxError(f"no pulled emulator is named {choice!r} (pulled: {names})",
                   fix="See 'tbx emulator list', or pull one: tbx emulator pull IMAGE")


def _name(ref: str, digest: str) -> str:
    """The emulator's name: the whole repository and the tag (``quay.io/a/binfmt:1`` ->
    ``quay.io-a-binfmt-1``), or the repository and the digest's first 12 digits: an image of
    another repository never replaces it."""
    from .naming import normalize

    r = normalize(ref)
    tail = r.tag if r.tag and not r.digest else "sha256-" + digest.split(":", 1)[-1][:12]
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{r.repository}-{tail}").strip(".-")[:200]


def _abs(name: str) -> str:
    """A tar member name as an absolute path in the image (``./usr/bin/x`` -> ``/usr/bin/x``)."""
    return "/" + (name[2:] if name.startswith("./") else name).lstrip("/")


def _read_layers(layout: str, into: str, refused: list[str] | None = None) -> dict[str, tuple[str, int]]:
    """qemu-* regular files of the image's final filesystem: {path in image: (file here, mode)}.
    A member over ``MAX_BYTES`` is not extracted (its reason goes to ``refused``); more than
    ``MAX_TOTAL`` in all is an error: disk use stays bounded whatever the image holds."""
    refused = [] if refused is None else refused
    total = 0
    def blob(digest: str) -> str:
        return os.path.join(layout, "blobs", *digest.split(":", 1))

    index = json.loads(Path(layout, "index.json").read_text())
    manifest = json.loads(Path(blob(index["manifests"][0]["digest"])).read_text())
    found: dict[str, tuple[str, int]] = {}
    links: dict[str, str] = {}
    for n, layer in enumerate(manifest.get("layers") or []):
        try:
            tar = tarfile.open(blob(layer["digest"]), "r:*")
        except (tarfile.TarError, OSError) as e:
            raise TbxError(f"layer {layer['digest'][:19]} cannot be read: {e}",
                           details=f"media type {layer.get('mediaType')}") from None
        with tar:
            for m in tar:
                path = _abs(m.name)
                d, base = os.path.split(path)
                if base == ".wh..wh..opq":
                    for p in [p for p in (*found, *links) if p.startswith(d.rstrip("/") + "/")]:
                        found.pop(p, None), links.pop(p, None)
                    continue
                if base.startswith(".wh."):
                    gone = os.path.join(d, base[4:])
                    found.pop(gone, None), links.pop(gone, None)
                    continue
                if not _QEMU.match(base):
                    continue
                found.pop(path, None), links.pop(path, None)
                if m.issym():
                    links[path] = os.path.normpath(os.path.join(d, m.linkname))
                elif m.islnk():
                    links[path] = _abs(m.linkname)
                elif m.isfile():
                    if m.size > MAX_BYTES:
                        refused.append(f"{path}: {m.size >> 20} MiB, larger than any emulator "
                                       f"(at most {MAX_BYTES >> 20} MiB): not extracted")
                        continue
                    total += m.size
                    if total > MAX_TOTAL:
                        raise TbxError(f"the image's qemu-* files add up to more than {MAX_TOTAL >> 20} MiB; "
                                       "nothing was installed", fix="Use an image with only QEMU's user-mode emulators")
                    f = tar.extractfile(m)
                    dest = os.path.join(into, f"{n}-{len(found)}-{base}")
                    with f, open(dest, "wb") as out:
                        shutil.copyfileobj(f, out)
                    found[path] = (dest, m.mode)
    for path, target in links.items():
        if target in found:
            found[path] = found[target]
    return found


def check_binary(path: str, mode: int, host_arch: archmod.Arch) -> str | None:
    """Why this file cannot be a host emulator, or None: tbx check's rules."""
    from . import elf

    try:
        info = elf.read(path)
    except TbxError as e:
        return e.message
    if info.e_machine != host_arch.e_machine or info.elf_class != host_arch.elf_class:
        built = archmod.by_e_machine(info.e_machine, info.elf_class)
        return f"built for {built.name if built else f'e_machine {info.e_machine}'}, not for this {host_arch.name} host"
    if not info.is_static:
        return f"dynamically linked (interpreter {info.interpreter}): a container cannot run it"
    if not mode & 0o111:
        return "not executable in the image"
    return None


_IDENTITY = re.compile(rb"qemu-([a-z0-9_]+) version (\d[\w.+~-]*)[^\n\0]*\nCopyright \(c\) [^\n\0]*QEMU")
MAX_BYTES = 64 << 20     # a qemu-user binary is under 40 MB
MAX_TOTAL = 512 << 20    # all the qemu-* files of one image


def qemu_identity(path: str) -> tuple[str, str] | None:
    """(QEMU target, version) from the text that ``qemu-TARGET --version`` prints, read from the
    binary without running it (QEMU keeps it as one string); None when the file has no such text."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_BYTES:
        return None
    m = _IDENTITY.search(data)
    return (m.group(1).decode(), m.group(2).decode()) if m else None


def qemu_version(path: str) -> str | None:
    """The QEMU version of an emulator, read from the file (nothing is executed)."""
    ident = qemu_identity(path)
    return ident[1] if ident else None


def not_qemu(path: str, a: archmod.Arch) -> str | None:
    """Why ``path`` is not QEMU's user-mode emulator for ``a`` (read, not run), or None."""
    ident = qemu_identity(path)
    if ident is None:
        return "not QEMU: it has no 'qemu-TARGET version' text of QEMU's user-mode emulators"
    if ident[0] != a.qemu:
        return f"QEMU for {ident[0]}, not for {a.name} (qemu-{a.qemu})"
    return None


def not_qemu_remembered(path: str, a: archmod.Arch) -> str | None:
    """``not_qemu``, remembered per unchanged file (``elf.remembered``): a start reads nothing twice."""
    from . import elf

    return elf.remembered(path, "not-qemu-" + a.name, lambda p: not_qemu(p, a))


def prove_qemu(path: str, a: archmod.Arch) -> str | None:
    """Why a pulled file is not QEMU for ``a``, or None: first read (``not_qemu``), then run
    confined (``runner.run_confined``: no host file system, no network, no privilege), where it
    must print what it claims."""
    from . import runner

    why = not_qemu(path, a)
    if why:
        return why
    _, version = qemu_identity(path)  # type: ignore[misc]
    try:
        rc, out, _ = runner.run_confined(path, ["--version"], timeout=10)
    except TbxError as e:
        return e.message
    if rc != 0 or not out.startswith(f"qemu-{a.qemu} version {version}"):
        return f"not QEMU: run confined, '--version' printed {out.strip()[:80]!r} (exit {rc})"
    return None


def pull(ref: str, *, authfile: str | None, tls_verify: bool | None, on_line=None,
         on_bytes=None) -> tuple[dict, list[str]]:
    """Install the emulators of ``ref``: (the installed record, the reasons files were refused).
    Progress as for image pulls (``progress.pull``): ``on_bytes(done, total)`` or ``on_line``."""
    from . import runner, skopeo

    runner.require("skopeo")
    host_arch = archmod.host()
    info = skopeo.inspect(ref, host_arch, authfile=authfile, tls_verify=tls_verify, sizes=bool(on_line or on_bytes))
    name = _name(ref, info.digest)
    base = emulators_dir()
    with tempfile.TemporaryDirectory(prefix="tbx-emulator-") as tmp:
        layout = os.path.join(tmp, "oci")
        skopeo.copy(info, host_arch, "", dest_ref=f"oci:{layout}:pulled", authfile=authfile,
                    tls_verify=tls_verify, on_line=on_line,
                    on_bytes=(lambda done: on_bytes(done, info.size)) if on_bytes else None)
        files = os.path.join(tmp, "files")
        os.mkdir(files)
        good: dict[archmod.Arch, str] = {}   # arch -> its checked file here
        refused: list[str] = []
        for path, (here, mode) in sorted(_read_layers(layout, files, refused).items()):
            a = next((x for x in archmod.ARCHES if x.qemu == _QEMU.match(os.path.basename(path)).group(1)), None)
            if a is None or a in good:
                continue
            why = check_binary(here, mode, host_arch) or prove_qemu(here, a)
            if why:
                refused.append(f"{path}: {why}")
            else:
                good[a] = here
        if not good:
            raise TbxError(f"{ref} holds no usable emulator; nothing was installed",
                           details="\n".join(refused) or "it has no qemu-ARCH or qemu-ARCH-static binary",
                           fix="Use an image with static qemu binaries built for this host "
                               f"({host_arch.name}), like the common binfmt images")
        base.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=base))
        try:
            arches = {}
            for a, here in good.items():
                dest = stage / a.qemu_binary
                shutil.copyfile(here, dest)
                os.chmod(dest, 0o755)
                arches[a.name] = a.qemu_binary
            stage.chmod(0o755)
            meta = {"source": info.reference, "digest": info.digest, "pinned": info.pinned,
                    "qemu_version": qemu_version(str(stage / next(iter(arches.values())))),  # read, not run
                    "arches": arches, "pulled": time.time()}
            (stage / META).write_text(json.dumps(meta, indent=1) + "\n")
            final = base / name
            old = None
            if final.exists():
                old = base / f".{name}.old-{os.getpid()}"
                final.rename(old)
            stage.rename(final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return {**meta, "name": name, "path": str(final)}, refused


def remove(name: str) -> str:
    for m in installed():
        if m["name"] == name:
            shutil.rmtree(m["path"])
            return m["path"]
    raise TbxError(f"no pulled emulator is named {name!r}", fix="See 'tbx emulator list'")


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
    from . import paths

    if root == Path("/"):
        why = paths.untrusted(path)
        if why:  # another user could swap what tbx registers (and what runs setuid inside)
            emu.problem = f"{path} cannot be trusted as an emulator: {why}"
            emu.fix = paths.trust_fix(path, why)
            return
    why = not_qemu_remembered(str(host_p), a)
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
