from __future__ import annotations

import io
import sys
import tarfile

from .. import arch as archmod
from .. import containers, hostspec, images, naming, output, progress, readiness
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


def _init_tar() -> bytes:
    data = hostspec.init_script_text().encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo(hostspec.INIT_PATH.lstrip("/").rsplit("/", 1)[0])
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        f = tarfile.TarInfo(hostspec.INIT_PATH.lstrip("/"))
        f.size, f.mode = len(data), 0o755
        tar.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def create(*, name: str | None, arch: str | None, image: str | None, distro: str | None, release: str | None,
           authfile: str | None, tls_verify: bool, userns: str | None, yes: bool) -> int:
    cfg = load()

    def local_arch_of(n: str) -> str | None:
        img = images.inspect_local(n)
        return img.architecture if img else None

    # Names and arguments first: the first error shown is about what the user typed.
    t = target(image=image, distro=distro, release=release, arch=arch, cfg=cfg, local_arch_of=local_arch_of)
    cname = naming.validate_container_name(name or t.container)
    userns = containers.validate_userns(userns)
    if containers.inspect(cname) is not None:
        raise _exists(cname)

    host_arch = archmod.host()
    emulator = None
    if archmod.needs_emulation(t.arch, host_arch):
        rep = readiness.require_ready(t.arch, search=cfg.emulator_paths)
        emulator = rep.emulator.in_container if rep.emulator else None
    runtime = hostspec.discover()

    img = images.inspect_local(t.local_image)
    if img is None:
        if not (yes or _ask(f"Image {t.ref} for {t.arch.name} is not stored locally. Pull it?")):
            raise TbxError(f"image {t.local_image} is not stored locally",
                           fix=f"tbx create … -y, or first: tbx image pull {t.ref} --arch {t.arch.name}")
        with progress.status(f"Pulling {t.ref} for {t.arch.name}") as update:
            _, img, _ = images.pull(t.ref, t.arch, authfile=authfile, tls_verify=tls_verify, on_line=update)
    images.check_local_arch(img, t.arch)

    from .. import podman_client

    create_id = containers.new_create_id()
    kw = containers.spec(name=cname, image=t.local_image, a=t.arch, host_arch=host_arch, emulator_in_container=emulator,
                         user=containers.invoking_user(), userns=userns, source=t.ref, create_id=create_id,
                         runtime=runtime)
    with progress.status(f"Creating container {cname}") as update, podman_client.engine() as client:
        import podman.errors

        created = False
        try:
            try:
                ctr = client.containers.create(**kw)
            except podman.errors.APIError as e:
                text = str(getattr(e, "explanation", "") or e)
                if "already in use" in text or getattr(getattr(e, "response", None), "status_code", 0) == 409:
                    raise _exists(cname) from e
                raise
            created = True
            if update:
                update("installing the init script")
            if not ctr.put_archive("/", _init_tar()):
                raise TbxError(f"could not copy the init script into {cname}", exit_code=EXIT_ENGINE)
            created = False  # complete: nothing to undo
        finally:
            if created:
                _remove_own(client, create_id)
    mode = archmod.mode(t.arch, host_arch)
    how = {"native": "native", "compat": "compat, no emulation",
           "emulated": f"emulated by {emulator}"}[mode]
    print(f"Created container {cname} ({t.arch.name}, {how}) from {t.local_image}")
    output.info(f"Enter it with: tbx enter {cname}")
    return 0


def _exists(cname: str) -> TbxError:
    return TbxError(f"container {cname} already exists",
                    fix=f"Enter it with 'tbx enter {cname}', or remove it with 'tbx rm {cname}'")


def _remove_own(client, create_id: str) -> None:
    """Undo a half-made create: remove only the container this create made (by its create id)."""
    try:
        for c in client.containers.list(all=True, filters={"label": f"{naming.LABEL_CREATE_ID}={create_id}"}):
            c.remove(force=True)
    except Exception:  # cleanup must not hide the original error
        pass
