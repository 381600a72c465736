"""Short image names (``debian:12``) resolved the way podman resolves them, from registries.conf.

Order, as containers/image does it:
1. a name with a registry host (``quay.io/…``, ``localhost/…``, ``host:port/…``) is used as typed;
2. an alias for the repository (``[aliases]``, from registries.conf, its drop-ins, then the
   short-name alias cache podman writes) gives the registry and path; the tag or digest stays;
3. ``unqualified-search-registries``: one registry is taken; several are ambiguous: on a terminal
   the user picks one, otherwise tbx refuses and lists the candidates (it never guesses); none is
   an error that says how to qualify the name.

Files: ``CONTAINERS_REGISTRIES_CONF`` or ``registries.conf`` in ``paths.containers_config()`` (when it
exists; not for root) or ``/etc/containers/registries.conf``; then ``registries.conf.d/*.conf`` from
/etc/containers and, unless root, that user directory, in name order; later files
override earlier ones. Reading only: tbx never writes these files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TbxError
from .naming import parse_reference

ETC = Path("/etc/containers")


@dataclass
class Registries:
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)  # short repo -> (target, file)
    search: list[str] = field(default_factory=list)
    search_file: str | None = None
    files: list[str] = field(default_factory=list)  # every file read, for messages


@dataclass(frozen=True)
class Resolution:
    name: str   # the fully qualified reference
    how: str    # for the user: where the registry came from


def config_files(*, uid: int | None = None) -> tuple[list[Path], Path | None]:
    """(registries.conf and its drop-ins in the order they apply, the alias cache)."""
    uid = os.getuid() if uid is None else uid
    from . import paths

    user = None if uid == 0 else Path(paths.containers_config())
    env = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if env:
        main = Path(env)
    elif user is not None and (user / "registries.conf").is_file():
        main = user / "registries.conf"
    else:
        main = ETC / "registries.conf"
    files = [main]
    for d in (ETC / "registries.conf.d", user / "registries.conf.d" if user else None):
        if d is not None and d.is_dir():
            files += sorted(p for p in d.iterdir() if p.suffix == ".conf" and p.is_file())
    cache = (Path("/var/cache/containers") if user is None else user) / "short-name-aliases.conf"
    return files, cache


def load(files: list[Path], cache: Path | None = None) -> Registries:
    """Merge the files: aliases add up (a later file wins), a later search list replaces."""
    import tomllib

    reg = Registries()

    def read(p: Path) -> dict:
        from . import paths

        paths.require_trusted(str(p), "the registries configuration")  # it decides where pulls go
        try:
            with open(p, "rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise TbxError(f"cannot read {p}: {e}", fix=f"Fix or remove {p} (see containers-registries.conf(5))") from None

    if cache is not None:  # podman's record of earlier choices: below every configured alias
        for k, v in (read(cache).get("aliases") or {}).items():
            reg.aliases[k] = (v, str(cache))
    for p in files:
        data = read(p)
        if p.is_file():
            reg.files.append(str(p))
        for k, v in (data.get("aliases") or {}).items():
            reg.aliases[k] = (v, str(p))
        search = data.get("unqualified-search-registries")
        if search is None:  # version 1 format
            search = ((data.get("registries") or {}).get("search") or {}).get("registries")
        if search is not None:
            reg.search, reg.search_file = list(search), str(p)
    return reg


def _suffix(tag: str | None, digest: str | None) -> str:
    return (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def candidates(path: str, search: list[str]) -> list[str]:
    """``registry/path`` for each search registry (docker.io's official images live in library/)."""
    out = []
    for r in search:
        p = f"library/{path}" if r in ("docker.io", "registry-1.docker.io") and "/" not in path else path
        out.append(f"{r}/{p}")
    return out


def resolve(ref: str, reg: Registries, *, ask=None) -> Resolution | None:
    """The fully qualified name for ``ref``; None when it already names its registry.
    ``ask(short, [candidates]) -> chosen`` is given only when a terminal can answer."""
    r = parse_reference(ref)
    if r.domain is not None:
        return None
    rest = _suffix(r.tag, r.digest)
    if r.path in reg.aliases:
        target, where = reg.aliases[r.path]
        return Resolution(f"{target}{rest}", f"the alias {r.path!r} in {where}")
    shown = reg.search_file or (reg.files[0] if reg.files else "registries.conf")
    cands = candidates(r.path, reg.search)
    if not cands:
        raise TbxError(f"the short name {ref!r} has no alias and no unqualified-search registries are configured",
                       details=f"Read: {', '.join(reg.files) or 'no registries.conf found'}",
                       fix=f"Give the full name (e.g. docker.io/library/{r.path}{rest}), or add an alias: "
                           f"[aliases] \"{r.path}\" = \"REGISTRY/{r.path}\" in ~/.config/containers/registries.conf")
    if len(cands) == 1:
        return Resolution(f"{cands[0]}{rest}", f"the only unqualified-search registry in {shown}")
    if ask is None:
        listed = "\n".join(f"  {c}{rest}" for c in cands)
        raise TbxError(f"the short name {ref!r} is ambiguous and there is no terminal to ask which registry is meant",
                       details=f"Candidates (unqualified-search-registries in {shown}):\n{listed}",
                       fix=f"Give the full name, e.g. {cands[0]}{rest}")
    chosen = ask(ref, [f"{c}{rest}" for c in cands])
    return Resolution(chosen, "your choice")


def _ask(short: str, options: list[str]) -> str:
    import sys

    print(f"? Which registry should {short!r} come from?", file=sys.stderr)
    for i, o in enumerate(options, 1):
        print(f"  {i}) {o}", file=sys.stderr)
    while True:
        print(f"Choose 1-{len(options)}: ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if not answer:
            raise TbxError(f"no registry chosen for {short!r}", fix=f"Give the full name, e.g. {options[0]}")
        if answer.strip().isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]


def qualify(ref: str) -> str:
    """``ref`` fully qualified, saying on stderr how a short name was resolved."""
    if parse_reference(ref).domain is not None:  # the common case reads no file
        return ref
    import sys

    files, cache = config_files()
    tty = sys.stdin.isatty() and sys.stderr.isatty()
    res = resolve(ref, load(files, cache), ask=_ask if tty else None)
    if res is None:
        return ref
    from .output import note

    note(f"resolved the short name {ref!r} to {res.name} ({res.how})")
    return res.name
