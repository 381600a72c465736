"""Generate shell completions and man pages from the CLI itself (plus hand-written examples).

``python -m toolbx_arch.docs OUTDIR`` writes completions/tbx.{bash,zsh,fish} and man/*.1 below
OUTDIR; the tests regenerate them and fail when the committed files drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import __version__, paths
from .completion import SHELLS, completion_script

DATE = "2026-11"

EXAMPLES = {
    "tbx": [("Check this host, create an arm64 container and enter it",
             "tbx check\ntbx create --arch aarch64 --image quay.io/toolbx-images/debian-toolbox:12\n"
             "tbx enter debian-toolbox-12-arm64")],
    "check": [("Can this machine run aarch64 and riscv64 containers?", "tbx check --arch aarch64 --arch riscv64"),
              ("Machine-readable report", "tbx check --json | jq '.arches[] | {arch, ready}'")],
    "create": [("An arm64 Debian toolbox", "tbx create --arch aarch64 --image quay.io/toolbx-images/debian-toolbox:12"),
               ("The architecture from the tag suffix", "tbx create --image registry.fedoraproject.org/fedora-toolbox:44-aarch64"),
               ("A named ppc64le Fedora container, pulling without asking",
                "tbx create porting --arch ppc64le --distro fedora --release 44 -y")],
    "enter": [("Enter the one aarch64 container", "tbx enter --arch aarch64"),
              ("Enter by name", "tbx enter fedora-toolbox-44-arm64")],
    "run": [("One command; its exit code is passed through", "tbx run -c fedora-toolbox-44-arm64 make check"),
            ("The same command on several architectures at once", "tbx run --arch aarch64,ppc64le,x86_64 uname -m"),
            ("As JSON, creating missing containers", "tbx run --arch aarch64,s390x --image IMAGE --create --json make test")],
    "list": [("Containers of one architecture", "tbx list --containers --arch arm64"),
             ("For scripts", "tbx list --json")],
    "rm": [("Remove a running container", "tbx rm --force fedora-toolbox-44-arm64"),
           ("Remove every tbx container", "tbx rm --all --force")],
    "rmi": [("Remove an image and the containers using it", "tbx rmi --force registry.fedoraproject.org/fedora-toolbox:44-arm64")],
    "build": [("Build for three arches and push one index (no root, no host binfmt entry)",
               "tbx build . --arch x86_64,aarch64,s390x --tag registry.example.org/app:1 --push"),
              ("Per-arch results for a script, keeping what succeeded",
               "tbx build --arch amd64,arm64 --tag app:dev --keep-going --json")],
    "image inspect": [("What does the registry offer for s390x?",
                       "tbx image inspect registry.fedoraproject.org/fedora-toolbox:44 --arch s390x")],
    "image pull": [("Pull the arm64 image (stored as …:44-arm64)",
                    "tbx image pull registry.fedoraproject.org/fedora-toolbox:44 --arch arm64")],
}

EXIT_STATUS = [("0", "Success."), ("1", "tbx error: bad input, host not ready, registry or image problem; "
                                         "a Fix: line says what to do."),
               ("125", "The container engine (podman) failed."),
               ("126", "run/enter: the command is not executable."), ("127", "run/enter: the command was not found."),
               ("other", "run/enter: the command's own exit code.")]

CONFIG = paths.CONFIG_FILE + """ (default ~/.config/tbx/config.toml), over /etc/tbx/config.toml:
.PP
.nf
default_arch = "aarch64"              # when --arch is not given
default_image = "quay.io/me/box:1"    # when neither --image nor --distro is given
emulator_paths = ["/opt/qemu/bin"]    # searched before the usual places
emulator_image = "registry.example.org/binfmt:latest"   # tbx emulator pull without IMAGE
host_emulators = true                 # false: only emulator_paths and pulled emulators
binfmt_mode = "auto"                  # private (Linux >= 6.7), host (the host's entries), or auto
[images]                              # per distro, or distro:release
"debian" = "quay.io/toolbx-images/debian-toolbox:{release}"
"fedora:44" = "registry.example.org/fedora-toolbox:44"
.fi
.PP
A file that does not parse or a wrong type is an error naming the file and key; an unknown key is a warning naming it (a file written for a newer tbx still works)."""


def _esc(text: str) -> str:
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l) if l.startswith((".", "'")) else l for l in out.splitlines())


def _commands():
    import typer.main

    from .cli import app

    root = typer.main.get_command(app)
    yield "tbx", root, None
    for name, cmd in sorted(root.commands.items()):
        if hasattr(cmd, "commands"):
            for sub, subcmd in sorted(cmd.commands.items()):
                yield f"{name} {sub}", subcmd, cmd
        else:
            yield name, cmd, root


def _options(cmd) -> list[tuple[str, str]]:
    rows = []
    for p in cmd.params:
        if getattr(p, "hidden", False):
            continue
        opts = list(p.opts) + list(getattr(p, "secondary_opts", []) or [])
        if p.param_type_name == "argument":
            label = (p.metavar or p.name).upper() if hasattr(p, "metavar") else p.name.upper()
        else:
            label = ", ".join(opts)
            mv = getattr(p, "metavar", None)
            if mv and not getattr(p, "is_flag", False):
                label += f" {mv}"
        rows.append((label, (getattr(p, "help", None) or "").strip()))
    return rows


ENVIRONMENT = [
    ("TBX_LOG_LEVEL", "debug, info, warning or error, as --log-level; debug shows every external command run "
                      "and gives a traceback for an internal error."),
    ("TBX_BINFMT_MODE", "auto (default), private or host, as binfmt_mode in the configuration: host runs "
                        "emulated programs through the host's own enabled binfmt_misc entries (those with the F "
                        "flag), which tbx only reads; auto picks host on kernels older than 6.7."),
    ("TBX_READY_TIMEOUT", "Seconds to wait for a container's init to become ready (default 90)."),
    ("TBX_CONTAINER, TBX_ARCH", "Set by tbx inside its containers: the container's name and architecture."),
    ("CONTAINER_HOST", "Read by podman and skopeo, which tbx runs: a remote podman service is used as they use it."),
    ("CONTAINERS_REGISTRIES_CONF", "The registries.conf that resolves short image names (debian:12), as in "
                                   "podman; its registries.conf.d drop-ins still apply."),
    *paths.ENVIRONMENT,
]
FILES = [
    *paths.FILES[:3],
    ("~/.config/containers/registries.conf, /etc/containers/registries.conf, registries.conf.d/*.conf",
     "Read (never written) to resolve short image names: aliases, then unqualified-search-registries."),
    *paths.FILES[3:],
    ("/var/lib/tbx/build-storage, /run/tbx-build", "Root's build storage and state for tbx build, owned by root's "
     "first subordinate id (results are moved into root's storage)."),
]


def man_page(full: str, cmd) -> str:
    page = "tbx" if full == "tbx" else "tbx-" + full.replace(" ", "-")
    first = (cmd.help or "").strip().splitlines()[0] if cmd.help else ""
    usage = f"tbx {full}" if full != "tbx" else "tbx"
    args = " ".join((p.metavar or p.name.upper()) if getattr(p, "metavar", None) else p.name.upper()
                    for p in cmd.params if p.param_type_name == "argument")
    synopsis = "[OPTIONS] COMMAND [ARGS]..." if full == "tbx" else f"[OPTIONS] {args}".strip()
    title = _esc(page.upper())
    lines = [f'.TH {title} 1 "{DATE}" "tbx {__version__}" "User Commands"',
             ".SH NAME", f"{_esc(page)} \\- {_esc(first.rstrip('.'))}",
             ".SH SYNOPSIS", f".B {_esc(usage)}", _esc(synopsis),
             ".SH DESCRIPTION"]
    for para in (cmd.help or "").strip().split("\n\n"):
        lines += [_esc(" ".join(para.split())), ".PP"]
    if full == "tbx":
        lines += [".SH COMMANDS"]
        for name, sub, _ in list(_commands())[1:]:
            lines += [".TP", f".B tbx {_esc(name)}", _esc(((sub.help or "").strip().splitlines() or [""])[0])]
    opts = _options(cmd)
    if opts:
        lines.append(".SH OPTIONS")
        for label, help_ in opts:
            lines += [".TP", f".B {_esc(label)}", _esc(help_) or "\\&"]
    if full == "tbx":
        lines += [".SH CONFIGURATION", CONFIG]
    if EXAMPLES.get(full):
        lines.append(".SH EXAMPLES")
        for title, code in EXAMPLES[full]:
            lines += [".PP", _esc(title) + ":", ".PP", ".nf", ".RS 4", _esc(code), ".RE", ".fi"]
    lines.append(".SH ENVIRONMENT")
    for k, v in ENVIRONMENT:
        lines += [".TP", f".B {_esc(k)}", _esc(v)]
    lines.append(".SH FILES")
    for k, v in FILES:
        lines += [".TP", f".I {_esc(k)}", _esc(v)]
    lines.append(".SH EXIT STATUS")
    for code, what in EXIT_STATUS:
        lines += [".TP", f".B {code}", _esc(what)]
    others = [f"tbx-{n.replace(' ', '-')}(1)" for n, _, _ in list(_commands())[1:] if n != full]
    lines += [".SH SEE ALSO", _esc(", ".join((["tbx(1)"] if full != "tbx" else []) + others
                                            + ["podman(1)", "skopeo(1)", "toolbox(1)"]))]
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str]:
    """relative path -> content, for every generated file."""
    files = {f"completions/{fname}": completion_script(shell) for shell, fname in SHELLS.items()}
    for full, cmd, _ in _commands():
        page = "tbx" if full == "tbx" else "tbx-" + full.replace(" ", "-")
        files[f"man/{page}.1"] = man_page(full, cmd)
    return files


def main(argv: list[str] | None = None) -> None:
    out = Path((argv or sys.argv[1:] or ["."])[0])
    for rel, text in generate().items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        print(p)


if __name__ == "__main__":
    main()
