"""``tbx create``: resolve the image for an arch, pull it when missing, and create the container."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import threading

from .. import arch as archmod
from .. import images, naming, runner
from ..config import load
from ..hostinfo import os_release
from ..errors import EXIT_ENGINE, TbxError
from ..resolve import target
from ..shortnames import qualify


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N]: ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def create(*, name: str | None, arch: str | None, image: str | None, distro: str | None, release: str | None,
           authfile: str | None, tls_verify: bool | None, userns: str | None, yes: bool, cpu: str | None = None,
           emulator_choice: str | None = None, nested: bool = False, volumes: list[str] = (),
           accelerate: str | None = None) -> int:
    """``nested``: called by another command that goes on afterwards (tbx run --create), which
    gets the signal handlers back once the container is reported; alone, a signal after the
    commit point is ignored until tbx exits (it would report a failure for a create that
    succeeded)."""
    # Image look-ups are podman calls (~50 ms): each starts in a thread as soon as its name is
    # known and runs while this process imports and reads the host's ELF headers.
    seen: dict[str, images.LocalImage | None] = {}
    failure: dict[str, BaseException] = {}
    looking: dict[str, threading.Thread] = {}

    def look(n: str) -> None:
        try:
            seen[n] = images.inspect_local(n)
        except BaseException as e:  # noqa: BLE001 - re-raised by local()
            failure[n] = e

    def prefetch(n: str) -> None:
        if n not in looking:
            looking[n] = threading.Thread(target=look, args=(n,), daemon=True)
            looking[n].start()

    def local(n: str) -> images.LocalImage | None:  # one podman call per name, at most
        prefetch(n)
        looking[n].join()
        if n in failure:
            raise failure[n]
        return seen[n]

    if image and _has_arch_suffix(image):  # target() will look at it as typed
        prefetch(image)
    cfg = load()

    def local_arch_of(n: str) -> str | None:
        img = local(n)
        return img.architecture if img else None

    # Names and arguments first: the first error shown is about what the user typed.
    t = target(image=image, distro=distro, release=release, arch=arch, cfg=cfg, local_arch_of=local_arch_of,
               host_release=os_release, qualify=qualify)
    prefetch(t.local_image)
    from .. import containers, hostspec, progress, readiness, status

    cname = naming.validate_container_name(name if name is not None else t.container)
    status.catalog_update()  # a held catalog lock stops create before it makes anything
    userns = containers.validate_userns(userns)
    mounts = [containers.parse_volume(v) for v in volumes]
    if userns == "identity":
        from ..output import warn

        warn(containers.IDENTITY_WARNING)

    host_arch = archmod.host()
    emulator = host_entry = host_interpreter = None
    if archmod.needs_emulation(t.arch, host_arch):
        from .. import emulators

        if emulator_choice is not None:  # --emulator NAME|PATH: that one, or an error
            chosen = emulators.resolve_choice(emulator_choice)
            if not os.path.isdir(chosen):  # a binary's path: checked here, then found in its directory
                from ..hostinfo import family

                emu = emulators.inspect_emulator(chosen, t.arch, host_arch, Path("/"), family())
                if emu.problem:
                    raise TbxError(f"--emulator {emulator_choice}: {emu.problem}", fix=emu.fix)
                chosen = os.path.dirname(chosen)
            search, host_places = (chosen,), False
        else:
            search, host_places = cfg.emulator_paths + emulators.search_dirs(), cfg.host_emulators
        rep = readiness.require_ready(t.arch, search=search, host_places=host_places,
                                      binfmt_setting=cfg.binfmt_mode)
        emulator = rep.emulator.real_path if rep.emulator else None
        host_entry = rep.host_entry
        host_interpreter = next((e["interpreter"] for e in rep.host_binfmt if e["name"] == host_entry), None)
        if host_entry and emulator_choice is not None:
            raise TbxError("--emulator chooses the emulator of a private registration; in host mode the host's "
                           f"binfmt_misc entry {host_entry} decides", fix="Leave out --emulator, or use binfmt_mode = private")
        if emulator_choice is not None and "/" in emulator_choice and emulator != os.path.realpath(emulator_choice):
            raise TbxError(f"--emulator {emulator_choice} is not an emulator of {t.arch.name}",
                           fix=f"Give the path of {t.arch.qemu_binary}, or a pulled emulator's name")
    from ..accel import mode as accel_mode

    how = accel_mode(accelerate if accelerate is not None else cfg.accelerate)
    if how is not None and not archmod.needs_emulation(t.arch, host_arch):
        raise TbxError(f"--accelerate speeds up an emulated arch; {t.arch.name} runs natively here",
                       fix="Leave out --accelerate")
    if cpu is not None:
        from ..cpumodels import check_cpu

        check_cpu(t.arch, emulator or host_interpreter, cpu, host_arch=host_arch)
    runtime = hostspec.discover()
    plan = None
    if how is not None:  # acceleration reads the image first: pull it now, undone if refused
        pulled = None
        if local(t.local_image) is None:
            _consent(t, yes)
            with progress.pull(f"Pulling {t.ref} for {t.arch.name}") as shown:
                pulled, _, _ = images.pull(t.ref, t.arch, authfile=authfile, tls_verify=tls_verify, **shown)
        try:
            from ..accel import prepare

            plan = prepare(t.arch, t.local_image, str(t.ref), host_arch, how, authfile=authfile,
                           tls_verify=tls_verify)
        except BaseException:
            _undo_pull(pulled)
            raise
        seen.pop(t.local_image, None)
        looking.pop(t.local_image, None)
    # The container is created while the image look-up finishes; a missing image makes
    # `podman create --pull never` fail, and a wrong arch undoes the container.
    made = _make(t, cname, lambda: local(t.local_image), host_arch, emulator, userns, runtime, cpu, host_entry,
                 nested, mounts, plan)
    if made is not None:
        return made
    if containers.inspect(cname) is not None:  # say so before a long pull
        raise _exists(cname)
    _consent(t, yes)
    pulled = None
    try:
        with progress.pull(f"Pulling {t.ref} for {t.arch.name}") as shown:
            pulled, img, _ = images.pull(t.ref, t.arch, authfile=authfile, tls_verify=tls_verify, **shown)
        made = _make(t, cname, lambda: img, host_arch, emulator, userns, runtime, cpu, host_entry, nested, mounts, plan)
        if made is None:
            raise TbxError(f"image {t.local_image} disappeared right after it was pulled", exit_code=EXIT_ENGINE)
        return made
    except BaseException:
        _undo_pull(pulled)
        raise


def _consent(t, yes: bool) -> None:
    """The image is not stored: pull it only with -y or the user's yes."""
    if not (yes or _ask(f"Image {t.ref} for {t.arch.name} is not stored locally. Pull it?")):
        raise TbxError(f"image {t.local_image} is not stored locally",
                       fix=f"tbx create … -y, or first: tbx image pull {t.ref} --arch {t.arch.name}")


def _undo_pull(pulled: str | None) -> None:
    """create = pull + create: a create that does not happen leaves no image name either. Only a
    name this run's pull stored (an interrupted pull undoes its own); an image a container uses
    stays (podman refuses), and one with other names only loses this one."""
    if pulled is not None and runner.run(["podman", "rmi", pulled], timeout=120).returncode == 0:
        images.forget(pulled)


def _has_arch_suffix(image: str) -> bool:
    """Whether the tag could end in ``-<arch>`` (a cheap over-approximation)."""
    last = image.rpartition("/")[2].partition("@")[0]
    return "-" in last.partition(":")[2]


def _make(t, cname, get_image, host_arch, emulator, userns, runtime, cpu=None, host_entry=None,
          nested=False, mounts=(), plan=None) -> int | None:
    """Create the container; None (and nothing made) when the image is not stored locally."""
    from .. import containers, execspec, output, progress, status

    create_id = containers.new_create_id()
    try:
        containers.status_dir(cname)
    except TbxError:  # a directory tbx may not use as it is: a removed container's, or an existing one's
        if containers.inspect(cname) is not None:
            raise _exists(cname) from None
        status.remove(cname)  # left by a container of this name removed outside tbx (podman rm)
    argv = containers.spec(name=cname, image=t.local_image, a=t.arch, host_arch=host_arch, emulator=emulator,
                           user=execspec.invoking_user(), userns=userns, source=t.ref, create_id=create_id,
                           runtime=runtime, cpu=cpu, host_entry=host_entry, volumes=list(mounts), accel=plan)
    with progress.status(f"Creating container {cname}"):
        attempted = False
        done = False
        r = None
        try:
            attempted = True
            r = runner.run(argv, timeout=300)
            if r.returncode != 0 and "already in use" in r.stderr:
                attempted = False  # the name is another container's: nothing of ours to undo
                raise _exists(cname)
            img = get_image()
            if img is None:
                return None  # (finally: a container made anyway, from an image that just appeared, goes)
            images.check_local_arch(img, t.arch)
            if r.returncode != 0:
                raise TbxError(f"podman could not create container {cname}", details=r.stderr.strip()[-800:],
                               exit_code=EXIT_ENGINE)
            status.clear(cname)  # what an earlier container of this name left (the directory is mounted)
            # (--userns auto: the status directory goes to the container's root at its first start,
            # where ensure_running inspects it anyway: one podman call less for every root create)
            # The commit point: from here the container is complete and stays, so a signal no
            # longer interrupts (it would report a failure for a create that succeeded).
            import signal

            # (nested: restored once the create has reported; `tbx run --create` goes on to run)
            held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
            done = True
            status.catalog_update(add={cname: t.arch.name})
        finally:
            if attempted and not done and (r is None or r.returncode == 0):  # it may exist: undo it
                containers.remove_by_create_id(create_id)
                status.remove(cname)
    mode = archmod.mode(t.arch, host_arch)
    how = {"native": "native", "compat": "compat, no emulation",
           "emulated": (f"emulated by the host's binfmt_misc entry {host_entry}" if host_entry
                        else f"emulated by {emulator}") + (f", CPU {cpu}" if cpu else "")
           + (f", accelerated: {plan.summary}" + ("" if plan.matched else " (UNMATCHED compiler)") if plan else "")}[mode]
    try:
        print(f"Created container {cname} ({t.arch.name}, {how}) from {t.local_image}")
        output.info(f"Enter it with: tbx enter {cname}")
    finally:
        if nested:
            for sig, handler in held.items():
                signal.signal(sig, handler)
    return 0


def _exists(cname: str) -> TbxError:
    return TbxError(f"container {cname} already exists",
                    fix=f"Enter it with 'tbx enter {cname}', or remove it with 'tbx rm {cname}'")
