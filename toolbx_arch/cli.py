"""tbx command line: the typer commands (options and help text), and ``invoke``, which runs a
command line through them and turns the framework's own exceptions into the top level's
(``toplevel``). Work happens in ``commands/``; ``grammar`` holds the same options as a table.

Imports of rich and pyelftools happen inside the commands that need them, so
``tbx --help`` and ``tbx run`` start fast.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import List, Optional

import typer

from . import __version__
from .paths import CONFIG_FILE

HELP = """Toolbox-style containers of a foreign CPU architecture.

tbx creates containers that share your user, home and host integration like toolbox, for any
architecture QEMU user-mode emulation supports (aarch64, armv7, i386, ppc64le, riscv64, s390x,
x86_64). The emulator is registered inside each container's own binfmt_misc instance (Linux
>= 6.7), with the C flag so sudo works; the host needs only the static qemu binaries.

Start with 'tbx check', then 'tbx create --arch aarch64' and 'tbx enter'.

Configuration: """ + CONFIG_FILE + """ (default ~/.config/tbx/config.toml; root's is
always ~root/.config/tbx/config.toml), then /etc/tbx/config.toml: default image per
distro/release, default arch, emulator search paths.
See tbx(1).
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]}, rich_markup_mode=None)
image_app = typer.Typer(help="Inspect and pull images of a given architecture.", no_args_is_help=True,
                        context_settings={"help_option_names": ["-h", "--help"]}, rich_markup_mode=None)
app.add_typer(image_app, name="image")
emulator_app = typer.Typer(help="QEMU emulators from OCI images, per user.",
                           no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                           rich_markup_mode=None)
app.add_typer(emulator_app, name="emulator")

class LogLevel(str, enum.Enum):  # typer makes a click.Choice of it: checked, listed in --help, completed
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _complete_arch(incomplete: str) -> list[str]:
    from .arch import ARCHES

    names = sorted({n for a in ARCHES for n in (a.name, a.oci_arch)})
    return [n for n in names if n.startswith(incomplete.lower())]


def _complete_container(incomplete: str) -> list[str]:
    from .completion import container_names

    return [n for n in container_names() if n.startswith(incomplete)]


def _complete_emulator(incomplete: str) -> list[str]:
    from .emulators import installed

    return [m["name"] for m in installed() if m["name"].startswith(incomplete)]


def _complete_image(incomplete: str) -> list[str]:
    from .completion import image_names

    return [n for n in image_names() if n.startswith(incomplete)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tbx version {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    log_level: LogLevel = typer.Option(LogLevel.warning, "--log-level", case_sensitive=False, metavar="LEVEL",
                                       help="debug, info, warning or error; debug shows every external command run."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    from .toplevel import set_log_level

    set_log_level(log_level.value)


ArchOpt = typer.Option(None, "--arch", "--platform", metavar="ARCH", autocompletion=_complete_arch,
                       help="Architecture: aarch64/arm64, x86_64/amd64, armv7/arm, i386, ppc64le, s390x, riscv64; "
                            "or a platform as podman's --platform takes it (linux/arm64/v8).")
TlsOpt = typer.Option(None, "--tls-verify/--no-tls-verify",
                      help="Require HTTPS and verify certificates, or not. Without either, registries.conf decides "
                           "(a registry marked insecure = true there is reached over HTTP), as in podman.")
AuthOpt = typer.Option(None, "--authfile", metavar="FILE", help="Registry credentials file (podman login format).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
ConnOpt = typer.Option(None, "--connection", metavar="ARCH=NAME", autocompletion=lambda incomplete: _complete_conn(incomplete),
                       help="Run ARCH on the machine of podman connection NAME, natively (repeatable; over the "
                            "configuration's [connections]).")
LocalOpt = typer.Option(False, "--local", help="Everything here: ignore connections.")
SyncOpt = typer.Option(True, "--sync/--no-sync",
                       help="On a connection's machine: ship the current directory first, and copy back what the "
                            "command made or changed there (default); --no-sync: neither.")
SyncDeletionsOpt = typer.Option(False, "--sync-deletions",
                                help="On a connection's machine: also delete here the shipped files the command "
                                     "deleted there (by default that is only reported).")
FallbackOpt = typer.Option(False, "--fallback-local",
                           help="When an arch's machine does not answer, run that arch here (emulated) instead of failing it.")


def _complete_conn(incomplete: str) -> list[str]:
    """ARCH=NAME: arches first, then podman's connection names."""
    arch, sep, rest = incomplete.partition("=")
    if not sep:
        return [f"{a}=" for a in _complete_arch(incomplete)]
    return [f"{arch}={n}" for n in _complete_conn_name(rest)]


@app.command(short_help="Check that this host can run containers of each arch.")
def check(
    arch: Optional[List[str]] = typer.Option(None, "--arch", "--platform", metavar="ARCH", autocompletion=_complete_arch,
                                             help="Check only this architecture or platform (repeatable)."),
    connection: Optional[List[str]] = ConnOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check whether this host can run containers of each architecture, and how to fix it.

    The WHERE column says where each arch would run: here (native, compat or emulated), or on
    the machine of a podman connection (configuration [connections], or --connection), with
    whether that machine answers and its podman version. Exit 0 when every requested
    architecture is ready (without --arch: when the host-wide prerequisites hold), 1 otherwise.
    """
    from .commands.check import check as cmd

    raise typer.Exit(cmd(arch or None, json_out=json_out, connections=connection or []))


@app.command(short_help="Create a toolbox container of an architecture.")
def create(
    name: Optional[str] = typer.Argument(None, metavar="[NAME]", help="Container name (default: image basename-tag[-arch])."),
    arch: Optional[str] = ArchOpt,
    image: Optional[str] = typer.Option(None, "--image", "-i", metavar="REF", autocompletion=_complete_image,
                                        help="Image to create the container from."),
    distro: Optional[str] = typer.Option(None, "--distro", "-d", metavar="DISTRO", help="Distribution whose toolbox image to use."),
    release: Optional[str] = typer.Option(None, "--release", "-r", metavar="RELEASE", help="Release of --distro."),
    authfile: Optional[str] = AuthOpt,
    tls_verify: Optional[bool] = TlsOpt,
    userns: Optional[str] = typer.Option(None, "--userns", metavar="MODE",
                                         help="User namespace layout: keep-id (rootless default), auto (root default: the container's root "
                                              "is a subordinate id, root's home is not shared) or identity (root only: "
                                              "the container's root is host root and root's home is shared read-write; "
                                              "the image is then trusted as root)."),
    cpu: Optional[str] = typer.Option(None, "--cpu", metavar="MODEL",
                                      help="CPU model QEMU emulates (QEMU_CPU) for every process in the container; "
                                           "the emulator's 'qemu-ARCH -cpu help' lists them."),
    emulator: Optional[str] = typer.Option(None, "--emulator", metavar="NAME|PATH", autocompletion=_complete_emulator,
                                           help="Emulator to use: a pulled one by name (tbx emulator list) or a "
                                                "static qemu binary's path. Default: emulator_paths, then pulled "
                                                "emulators (newest QEMU first), then the host's qemu-user-static."),
    volume: Optional[List[str]] = typer.Option(None, "--volume", "-v", metavar="HOST[:CONTAINER][:ro|rw]",
                                               help="Share a host directory too (repeatable; podman's syntax). "
                                                    "/, /proc, /sys, /dev, /run/host and tbx's status directories "
                                                    "are refused."),
    yes: bool = typer.Option(False, "--assumeyes", "-y", help="Pull the image without asking."),
    accelerate: Optional[bool] = typer.Option(None, "--accelerate/--no-accelerate",
                                              help="Run the distribution's cross compiler and build tools natively "
                                                   "inside (same output as the emulated compiler; refused when their "
                                                   "source revisions differ). Default: the configuration's accelerate."),
    accelerate_unmatched: bool = typer.Option(False, "--accelerate-unmatched",
                                              help="Accelerate even when the native compiler's source revision differs "
                                                   "from the container's own (development builds only; tbx list and "
                                                   "tbx check say so)."),
) -> None:
    """Create a toolbox container of an architecture (pulls the arch's image when missing)."""
    from .commands.create import create as cmd

    raise typer.Exit(cmd(name=name, arch=arch, image=image, distro=distro, release=release, authfile=authfile,
                         tls_verify=tls_verify, userns=userns, yes=yes, cpu=cpu, emulator_choice=emulator,
                         volumes=volume or [],
                         accelerate="unmatched" if accelerate_unmatched else
                         None if accelerate is None else "matched" if accelerate else "no"))


@app.command(short_help="Open an interactive shell in a container, as you.")
def enter(
    name: Optional[str] = typer.Argument(None, metavar="[NAME]", autocompletion=_complete_container, help="Container to enter."),
    arch: Optional[str] = ArchOpt,
    distro: Optional[str] = typer.Option(None, "--distro", "-d", metavar="DISTRO", help="Find the container by distribution."),
    release: Optional[str] = typer.Option(None, "--release", "-r", metavar="RELEASE", help="Find the container by release."),
    image: Optional[str] = typer.Option(None, "--image", "-i", metavar="REF",
                                        help="On a connection's machine: the image of the container there."),
    connection: Optional[List[str]] = ConnOpt,
    local: bool = LocalOpt,
    sync: bool = SyncOpt,
    sync_deletions: bool = SyncDeletionsOpt,
) -> None:
    """Start a container if needed and open an interactive shell in it as you.

    With --arch A, where A has a podman connection (--connection A=NAME, or the configuration's
    [connections]): a login shell in A's tbx container on that machine, on a real terminal, in
    the shipped copy of the current directory; on leaving it, what was made or changed there
    comes back as after tbx run, and the shell's exit status is tbx's. --local stays here.
    """
    from .commands.enter import enter as cmd

    raise typer.Exit(cmd(name=name, arch=arch, distro=distro, release=release, image=image,
                         connections=connection or [], local=local, sync=sync, sync_deletions=sync_deletions))


@app.command(context_settings={"allow_interspersed_args": False},
             short_help="Run a command in a container, or in one per arch.")
def run(
    command: List[str] = typer.Argument(..., metavar="COMMAND [ARG]...", help="Command to run."),
    container: Optional[str] = typer.Option(None, "--container", "-c", metavar="NAME",
                                            autocompletion=_complete_container, help="Container to run in."),
    arch: Optional[str] = typer.Option(None, "--arch", "--platform", metavar="ARCH[,ARCH…]", autocompletion=_complete_arch,
                                       help="Architecture or platform; several separated by commas run the command in each."),
    image: Optional[str] = typer.Option(None, "--image", "-i", metavar="REF", help="With several arches: the image's containers."),
    distro: Optional[str] = typer.Option(None, "--distro", "-d", metavar="DISTRO", help="Find the container by distribution."),
    release: Optional[str] = typer.Option(None, "--release", "-r", metavar="RELEASE", help="Find the container by release."),
    create_missing: bool = typer.Option(False, "--create", help="With several arches: create missing containers."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="With several arches: how many at once (default: CPUs)."),
    json_out: bool = typer.Option(False, "--json", help="With several arches: print results as JSON."),
    tls_verify: Optional[bool] = TlsOpt,
    connection: Optional[List[str]] = ConnOpt,
    local: bool = LocalOpt,
    fallback_local: bool = FallbackOpt,
    sync: bool = SyncOpt,
    sync_deletions: bool = SyncDeletionsOpt,
) -> None:
    """Run a command in a container; its exit code is passed through (126 not executable, 127 not found).

    An arch with a podman connection (--connection ARCH=NAME, or the configuration's
    [connections]) runs on that machine, natively, in a tbx container there, made on first use
    from the image of your local container of that arch (or --image) and kept for later runs
    (tbx list --connection NAME). The current directory is shipped into it first, under the same
    path; the command runs there as root of the node user's rootless podman, and the files it made
    or changed there come back into the current directory (a file changed here meanwhile is kept,
    the node's version written beside it as FILE.from-NODE; deletions are reported, and applied
    with --sync-deletions). --no-sync skips both directions. Several connections for an arch
    (ARCH=A,B, or a list in [connections]): the first that answers is used. No home directory is
    shared with a remote machine, and nothing else of this host.
    """
    from .commands.run import run as cmd

    raise typer.Exit(cmd(command, container=container, arch=arch, image=image, distro=distro, release=release,
                         create_missing=create_missing, jobs=jobs, json_out=json_out, tls_verify=tls_verify,
                         connections=connection or [], local=local, fallback_local=fallback_local, sync=sync,
                         sync_deletions=sync_deletions))


@app.command(short_help="Build a multi-arch image: no root, no host binfmt entry.")
def build(
    context: str = typer.Argument(".", metavar="[CONTEXT]", help="Build context directory (default: the current one)."),
    arch: str = typer.Option(..., "--arch", "--platform", metavar="ARCH[,ARCH…]", autocompletion=_complete_arch,
                             help="Architectures or platforms to build, separated by commas; every alias works."),
    tag: str = typer.Option(..., "--tag", "-t", metavar="REF",
                            help="Name of the manifest list; each arch is stored as REF-<oci arch>."),
    file: Optional[str] = typer.Option(None, "--file", "-f", metavar="PATH",
                                       help="Containerfile (default: CONTEXT/Containerfile, then CONTEXT/Dockerfile)."),
    build_arg: Optional[List[str]] = typer.Option(None, "--build-arg", metavar="KEY=VALUE",
                                                  help="Build argument (repeatable)."),
    push: bool = typer.Option(False, "--push", help="Push the manifest list and every image in it to REF."),
    keep_going: bool = typer.Option(False, "--keep-going",
                                    help="When some arches fail, assemble (and push) the others anyway; still exit 1."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="Arches built at once (default: the number of arches, at most the CPUs)."),
    authfile: Optional[str] = AuthOpt,
    tls_verify: Optional[bool] = TlsOpt,
    connection: Optional[List[str]] = ConnOpt,
    local: bool = LocalOpt,
    fallback_local: bool = FallbackOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Build an image for several architectures, with no root and no host binfmt_misc entry.

    Each arch is built by its own 'podman build --platform' and tagged REF-<oci arch>; when all
    succeed they are assembled into the manifest list REF (pushed with --push). An emulated arch
    is built in a user namespace of its own with a private QEMU registration, which ends with the
    build: nothing is registered for your other containers, nor on the host. Rootless, that
    namespace sits inside your podman one and the images go to your normal storage; as root, the
    build uses storage of its own (/var/lib/tbx/build-storage) and the results are moved into
    root's storage. An arch with a podman connection (--connection ARCH=NAME, or the
    configuration's [connections]) is built natively on that machine (podman streams the
    context there) and copied back as REF-<oci arch>; with --push the machine pushes it to the
    registry itself instead, once every arch is built. The table's WHERE says where each arch
    was built. Exit 0 when every arch was built, 1 otherwise.
    """
    from .commands.build import build as cmd

    raise typer.Exit(cmd(context, arches=arch, tag=tag, file=file, build_args=build_arg or [], push=push,
                         jobs=jobs, json_out=json_out, keep_going=keep_going, authfile=authfile,
                         tls_verify=tls_verify, connections=connection or [], local=local,
                         fallback_local=fallback_local))


@app.command("list", short_help="List tbx containers and images.")
def list_(
    containers: bool = typer.Option(False, "--containers", "-c", help="Only containers."),
    images: bool = typer.Option(False, "--images", "-i", help="Only images."),
    all_: bool = typer.Option(False, "--all", "-a",
                              help="Stopped containers too: always the case; accepted as in podman ps."),
    arch: Optional[str] = ArchOpt,
    connection: Optional[str] = typer.Option(None, "--connection", metavar="NAME",
                                             autocompletion=lambda incomplete: _complete_conn_name(incomplete),
                                             help="The tbx containers on the machine of this podman connection."),
    json_out: bool = JsonOpt,
) -> None:
    """List tbx containers and images (with --connection: the containers on that machine)."""
    from .commands.list import list_ as cmd

    raise typer.Exit(cmd(containers=containers, images=images, arch=arch, json_out=json_out, connection=connection))


def _complete_conn_name(incomplete: str) -> list[str]:
    try:
        from .nodes import connections

        return [n for n in connections() if n.startswith(incomplete)]
    except Exception:  # completion must never fail loudly
        return []


@app.command(short_help="Remove tbx containers.")
def rm(
    names: Optional[List[str]] = typer.Argument(None, metavar="[NAME]...", autocompletion=_complete_container,
                                                help="Containers to remove."),
    force: bool = typer.Option(False, "--force", "-f", help="Remove running containers too."),
    all_: bool = typer.Option(False, "--all", "-a", help="Remove every tbx container."),
    connection: Optional[str] = typer.Option(None, "--connection", metavar="NAME",
                                             autocompletion=lambda incomplete: _complete_conn_name(incomplete),
                                             help="Remove tbx containers on the machine of podman connection NAME."),
) -> None:
    """Remove tbx containers (here, or on a podman connection's machine with --connection)."""
    from .commands.rm import rm as cmd

    raise typer.Exit(cmd(names or [], force=force, all_=all_, connection=connection))


@app.command(short_help="Remove images tbx stored.")
def rmi(
    images: Optional[List[str]] = typer.Argument(None, metavar="[IMAGE]...", autocompletion=_complete_image,
                                                 help="Images to remove."),
    force: bool = typer.Option(False, "--force", "-f", help="Also remove containers using them."),
    all_: bool = typer.Option(False, "--all", "-a", help="Remove every image tbx pulled."),
) -> None:
    """Remove images tbx stored."""
    from .commands.rmi import rmi as cmd

    raise typer.Exit(cmd(images or [], force=force, all_=all_))


@app.command(short_help="Print the shell completion script for bash, zsh or fish.")
def completion(
    shell: str = typer.Argument(..., metavar="SHELL", autocompletion=lambda: ["bash", "zsh", "fish"],
                                help="bash, zsh or fish."),
) -> None:
    """Print the completion script for SHELL on stdout; nothing is installed or edited.

    Load it for the current shell with: source <(tbx completion bash), or
    tbx completion zsh > "${fpath[1]}/_tbx", or tbx completion fish | source. Packages install
    the same scripts system-wide.
    """
    from .completion import SHELLS, completion_script
    from .errors import TbxError

    if shell not in SHELLS:
        raise TbxError(f"no completion for shell {shell!r}", fix=f"Use one of: {', '.join(SHELLS)}")
    sys.stdout.write(completion_script(shell))


@image_app.command("inspect", short_help="Inspect an image in a registry for an arch.")
def image_inspect(
    ref: str = typer.Argument(..., metavar="REF", help="Image reference in a registry."),
    arch: Optional[str] = ArchOpt,
    authfile: Optional[str] = AuthOpt,
    tls_verify: Optional[bool] = TlsOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Show what a registry offers for an architecture: digest, platform, size, all platforms."""
    from .commands.image import inspect as cmd

    raise typer.Exit(cmd(ref, arch=arch, authfile=authfile, tls_verify=tls_verify, json_out=json_out))


@image_app.command("pull", short_help="Pull an image of an arch into local storage.")
def image_pull(
    ref: str = typer.Argument(..., metavar="REF", help="Image reference in a registry."),
    arch: Optional[str] = ArchOpt,
    authfile: Optional[str] = AuthOpt,
    tls_verify: Optional[bool] = TlsOpt,
) -> None:
    """Pull an image for an architecture into local storage under its arch-suffixed name."""
    from .commands.image import pull as cmd

    raise typer.Exit(cmd(ref, arch=arch, authfile=authfile, tls_verify=tls_verify))


@emulator_app.command("pull", short_help="Install the static QEMU emulators an OCI image ships.")
def emulator_pull(
    ref: Optional[str] = typer.Argument(None, metavar="[IMAGE]",
                                        help="Image with static qemu-ARCH binaries (default: emulator_image)."),
    authfile: Optional[str] = AuthOpt,
    tls_verify: Optional[bool] = TlsOpt,
) -> None:
    """Copy the host-arch variant of IMAGE and install every static qemu-ARCH (or qemu-ARCH-static)
    binary it ships under tbx's data directory, in emulators/NAME (see tbx(1), FILES; NAME: the repository and tag, or the
    repository and short digest). Each binary is checked as tbx check checks one (ELF, static,
    built for this host, executable, QEMU's version text for its arch), then must print that
    version when run confined (no host files, no network, no privilege); one that fails is not
    installed, and the reason is shown. Pulled emulators are used after emulator_paths and before
    the host's qemu-user-static, newest QEMU first."""
    from .commands.emulator import pull as cmd

    raise typer.Exit(cmd(ref, authfile=authfile, tls_verify=tls_verify))


@emulator_app.command("list", short_help="List pulled emulators.")
def emulator_list(json_out: bool = JsonOpt) -> None:
    """Name, QEMU version, arches, source reference and digest, and path of each pulled emulator."""
    from .commands.emulator import list_ as cmd

    raise typer.Exit(cmd(json_out=json_out))


@emulator_app.command("rm", short_help="Remove pulled emulators.")
def emulator_rm(
    names: List[str] = typer.Argument(..., metavar="NAME...", autocompletion=_complete_emulator,
                                      help="Pulled emulators to remove."),
) -> None:
    """Remove pulled emulators. A container created with one then fails to start, naming it."""
    from .commands.emulator import rm as cmd

    raise typer.Exit(cmd(names))


def invoke(args: list[str]) -> int:
    """Run the command line through the framework; its own exceptions become the top level's: a
    usage problem a TbxError whose fix names the command's --help, an abort an interrupt."""
    import typer.main
    from typer import Abort, Exit
    from typer.exceptions import TyperException as UsageProblem  # typer vendors click (>= 0.27)

    from .errors import TbxError
    from .grammar import refuse_bundled_values

    if "_TBX_COMPLETE" in os.environ:  # a shell asks for completions (scripts: tbx completion)
        from typer._completion_classes import completion_init

        completion_init()
    bundled = refuse_bundled_values(args)
    if bundled:
        raise TbxError(bundled[0], fix=bundled[1])
    try:
        rc = typer.main.get_command(app)(args=args, prog_name="tbx", standalone_mode=False)
    except Exit as e:
        return e.exit_code
    except Abort:
        raise KeyboardInterrupt from None
    except UsageProblem as e:  # usage errors: bad option, missing argument
        ctx = getattr(e, "ctx", None)
        path = ctx.command_path if ctx is not None else "tbx"
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        hint = "an argument that starts with '-' goes after '--'; " if "No such option" in msg else ""
        raise TbxError(msg, fix=f"{hint}see '{path} --help'") from None
    return rc if isinstance(rc, int) else 0


def main(argv: list[str] | None = None) -> None:
    """``python -m toolbx_arch.cli``: the framework alone, under the one top level."""
    from .toplevel import run

    run(lambda: invoke(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
