from __future__ import annotations

import sys

from .. import arch as archmod
from .. import containers, hostspec, images, naming, output, progress, readiness, runner
from ..config import load
from ..errors import EXIT_ENGINE, TbxError
from ..resolve import target


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N]: ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def create(*, name: str | None, arch: str | None, image: str | None, distro: str | None, release: str | None,
           authfile: str | None, tls_verify: bool, userns: str | None, yes: bool) -> int:
    cfg = load()
    seen: dict[str, images.LocalImage | None] = {}

    def local(n: str) -> images.LocalImage | None:  # one podman call per name, at most
        if n not in seen:
            seen[n] = images.inspect_local(n)
        return seen[n]

    def local_arch_of(n: str) -> str | None:
        img = local(n)
        return img.architecture if img else None

    # Names and arguments first: the first error shown is about what the user typed.
    t = target(image=image, distro=distro, release=release, arch=arch, cfg=cfg, local_arch_of=local_arch_of)
    cname = naming.validate_container_name(name if name is not None else t.container)
    userns = containers.validate_userns(userns)

    # The image look-up (a podman call) runs while the host checks read ELF headers.
    import threading

    failure: list[BaseException] = []

    def look() -> None:
        try:
            local(t.local_image)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            failure.append(e)

    th = threading.Thread(target=look, daemon=True)
    th.start()
    host_arch = archmod.host()
    emulator = None
    try:
        if archmod.needs_emulation(t.arch, host_arch):
            rep = readiness.require_ready(t.arch, search=cfg.emulator_paths)
            emulator = rep.emulator.real_path if rep.emulator else None
        runtime = hostspec.discover()
    finally:
        th.join()
    if failure:
        raise failure[0]
    img = seen[t.local_image]
    if img is None:
        if containers.inspect(cname) is not None:  # say so before a long pull; else podman says it
            raise _exists(cname)
        if not (yes or _ask(f"Image {t.ref} for {t.arch.name} is not stored locally. Pull it?")):
            raise TbxError(f"image {t.local_image} is not stored locally",
                           fix=f"tbx create … -y, or first: tbx image pull {t.ref} --arch {t.arch.name}")
        pulled = None
        try:
            with progress.status(f"Pulling {t.ref} for {t.arch.name}") as update:
                pulled, img, _ = images.pull(t.ref, t.arch, authfile=authfile, tls_verify=tls_verify, on_line=update)
            return _make(t, cname, img, host_arch, emulator, userns, runtime)
        except BaseException:
            # create = pull + create: a create that does not happen leaves no image name either.
            # Only a name this run's pull stored (an interrupted pull undoes its own); an image
            # a container uses stays (podman refuses), and one with other names only loses this one.
            if pulled is not None:
                r = runner.run(["podman", "rmi", pulled], timeout=120)
                if r.returncode == 0:
                    images.forget(pulled)
            raise
    return _make(t, cname, img, host_arch, emulator, userns, runtime)


def _make(t, cname, img, host_arch, emulator, userns, runtime) -> int:
    images.check_local_arch(img, t.arch)

    from .. import status

    status.remove(cname)  # a leftover of an earlier container of this name (it does not exist now)
    create_id = containers.new_create_id()
    argv = containers.spec(name=cname, image=t.local_image, a=t.arch, host_arch=host_arch, emulator=emulator,
                           user=containers.invoking_user(), userns=userns, source=t.ref, create_id=create_id,
                           runtime=runtime)
    with progress.status(f"Creating container {cname}"):
        attempted = False
        done = False
        try:
            attempted = True
            r = runner.run(argv, timeout=300)
            if r.returncode != 0:
                if "already in use" in r.stderr:
                    attempted = False  # the name is another container's: nothing of ours to undo
                    raise _exists(cname)
                raise TbxError(f"podman could not create container {cname}", details=r.stderr.strip()[-800:],
                               exit_code=EXIT_ENGINE)
            if userns == "auto":  # the status directory belongs to the container's root
                info = containers.inspect(cname)
                if info is None:
                    raise TbxError(f"container {cname} disappeared right after it was created", exit_code=EXIT_ENGINE)
                containers.status_dir(cname, root_uid=info.root_uid)
            # The commit point: from here the container is complete and stays, so a signal no
            # longer interrupts (it would report a failure for a create that succeeded).
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            done = True
            status.catalog_update(add={cname: t.arch.name})
        finally:
            if attempted and not done:
                containers.remove_by_create_id(create_id)
                status.remove(cname)
    mode = archmod.mode(t.arch, host_arch)
    how = {"native": "native", "compat": "compat, no emulation",
           "emulated": f"emulated by {emulator}"}[mode]
    print(f"Created container {cname} ({t.arch.name}, {how}) from {t.local_image}")
    output.info(f"Enter it with: tbx enter {cname}")
    return 0


def _exists(cname: str) -> TbxError:
    return TbxError(f"container {cname} already exists",
                    fix=f"Enter it with 'tbx enter {cname}', or remove it with 'tbx rm {cname}'")
