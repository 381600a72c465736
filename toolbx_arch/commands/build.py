"""`tbx build`: one image per architecture under a private emulator registration, assembled into
one manifest list (and pushed with --push), with a per-arch table or JSON.

Each arch is its own `podman build --platform`, tagged REF-<oci arch>; its stored os/arch/variant
is verified. Emulated arches run inside buildenv.emulation() (no root, no host binfmt entry).
Partial failure: the others finish, nothing is assembled or pushed (unless --keep-going), exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import arch as archmod
from .. import binfmt, buildenv, images, naming, nodes, output, readiness, runner, skopeo
from ..errors import EXIT_ENGINE, TbxError

SCHEMA = 1
LOG_TAIL = 6
NAME_RACE = "locating pulled image"
RACE_RETRIES = 2


@dataclass
class Platform:
    arch: str
    oci_arch: str
    platform: str
    image: str
    status: str = "pending"
    digest: str | None = None
    size: int | None = None
    seconds: float = 0.0
    error: str | None = None
    where: str = "local"            # "local", or the podman connection it was built on
    fallback: str | None = None     # --fallback-local: why its node was not used
    fix: str | None = None
    on_registry: bool = False       # pushed from its node (--push): in the registry, not copied here
    log: list[str] = field(default_factory=list, repr=False)
    streamed: bool = False          # error is the log's tail, already shown as it streamed
    image_id: str | None = None     # the local image's id (what DIGEST shows when nothing is pushed)
    waited: float = 0.0             # seconds queued for a build slot (--jobs) before it started
    queued_at: float = 0.0

    def as_dict(self) -> dict:
        return {"arch": self.arch, "oci_arch": self.oci_arch, "platform": self.platform, "image": self.image,
                "status": self.status, "digest": self.digest, "size": self.size, "seconds": self.seconds,
                "where": self.where, "fallback": self.fallback, "error": self.error, "fix": self.fix,
                "image_id": self.image_id, "waited": self.waited}


def parse_arches(spec: str) -> list[archmod.Arch]:
    """Every alias works; the same arch twice (``arm64,aarch64``) is bad input, not a silent merge."""
    out: list[archmod.Arch] = []
    for part in spec.split(","):
        a = archmod.resolve(part)
        if a in out:
            raise TbxError(f"architecture {a.name} is given twice in --arch {spec!r}",
                           fix="Name each architecture once, e.g. --arch x86_64,aarch64")
        out.append(a)
    return out


def parse_tag(tag: str) -> naming.Reference:
    r = naming.parse_reference(tag)
    if r.digest:
        raise TbxError(f"--tag {tag!r} names a digest; a build needs a name to store its result under",
                       fix="Use a reference like registry.example.org/app:1.0")
    return naming.Reference(r.domain or "localhost", r.path, r.tag or "latest")


def arch_image(ref: naming.Reference, a: archmod.Arch) -> str:
    return str(ref.with_tag(naming._fit_tag(ref.tag or "latest", f"-{a.oci_arch}")))


def find_containerfile(context: str, file: str | None) -> str:
    if not os.path.exists(context):
        raise TbxError(f"build context {context} does not exist", fix="Give the directory that holds your Containerfile")
    if not os.path.isdir(context):
        raise TbxError(f"build context {context} is not a directory",
                       fix=f"Give its directory: tbx build {os.path.dirname(os.path.abspath(context))} "
                           f"--file {context} …")
    if file:
        if not os.path.isfile(file):
            raise TbxError(f"Containerfile {file} does not exist", fix="Check the --file path (relative to here)")
        return file
    for n in ("Containerfile", "Dockerfile"):
        p = os.path.join(context, n)
        if os.path.isfile(p):
            return p
    raise TbxError(f"no Containerfile or Dockerfile in {context}", fix="Add one, or name it with --file PATH")


def _registration_lines(arches: list[archmod.Arch], host_arch: archmod.Arch) -> dict[archmod.Arch, str]:
    emulated = [a for a in arches if archmod.mode(a, host_arch) == "emulated"]
    if not emulated:
        return {}
    host = readiness.check_host(tools={"podman": "present", "skopeo": "present"})
    lines = {}
    for a in emulated:
        rep = readiness.check_arch(a, host)
        problems = rep.problems + [p for p in host.problems if p not in rep.problems]
        if problems:
            p = problems[0]
            raise TbxError(f"this host cannot build for {a.name}: {p.problem}", fix=p.fix,
                           details=f"Run 'tbx check --arch {a.name}' for the full picture")
        lines[a] = binfmt.registration_line(a, rep.emulator.real_path)
    return lines


class _Builds:
    """The running `podman build` processes, so that Ctrl-C can stop each one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen] = []
        self.stopping = threading.Event()

    def start(self, argv: list[str]) -> subprocess.Popen:
        with self.lock:
            if self.stopping.is_set():
                raise TbxError("interrupted")
            # Its own session: the terminal's Ctrl-C reaches tbx, which stops each build in turn.
            p = runner.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, bufsize=1, errors="replace", start_new_session=True)
            self.procs.append(p)
            return p

    def stop_all(self) -> None:
        with self.lock:
            self.stopping.set()
            procs = list(self.procs)
        for p in procs:
            if p.poll() is None:
                # the whole group: the PID namespace's `unshare` ends, and with it every RUN process
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _inspect(podman: list[str], image: str) -> dict | None:
    r = runner.run([*podman, "image", "inspect", "--format", "json", image], timeout=120)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)[0]


def _remove_leftovers(podman: list[str], since: float, env: buildenv.Env) -> list[str]:
    """After an interruption: the build containers (buildah's, not podman's) made since the
    build started (podman build leaves its working container behind when stopped), unless
    another build may own some of them."""
    r = runner.run([*podman, "ps", "--all", "--external", "--format", "json"], timeout=120)
    rows = json.loads(r.stdout or "[]") if r.returncode == 0 else []
    new = sorted(c["Id"] for c in rows if c.get("Status") == "Storage" and int(c.get("Created") or 0) >= since - 1)
    if not new:
        return []
    if env.others_building():
        output.warn(f"another tbx build is running, so its build containers and this one's cannot be told apart; "
                    f"left: {' '.join(i[:12] for i in new)} (podman rm --storage -f ID removes one)")
        return []
    runner.run([*podman, "rm", "--storage", "--force", *new], timeout=300)
    return new


def _build_one(p: Platform, a: archmod.Arch, prefix: list[str], podman: list[str], own_storage: bool,
               base_args: list[str], printer, builds: _Builds, node: nodes.Node | None = None,
               keep_on_node: bool = False, options: list[str] | None = None) -> None:
    """Build one arch (``node``: on that machine; its result is copied here, or with
    ``keep_on_node`` (--push) left there, to be pushed from there once every arch is built)."""
    start = time.monotonic()
    p.waited = round(max(0.0, start - p.queued_at), 2) if p.queued_at else 0.0
    if p.waited >= 0.5:
        printer.line(a.name, f"tbx: starting after {p.waited:.1f}s waiting for a build slot", True)
    try:
        argv = [*prefix, "build", "--force-rm", "--platform", a.platform, "--tag", p.image, *(options or []),
                *base_args]
        for attempt in range(1, RACE_RETRIES + 2):
            proc = builds.start(argv)
            for line in proc.stdout:
                line = _without_podmans_args(line.rstrip("\n"))
                if line is None:
                    continue
                p.log.append(line)
                del p.log[:-200]
                printer.line(a.name, line, False)
            rc = proc.wait()
            # Builds of several arches in one storage pull the same base name for each platform; a
            # parallel pull can move the name between a pull and its look-up. That is podman's
            # race, not the build's failure: run that arch again.
            if rc == 0 or builds.stopping.is_set() or not any(NAME_RACE in ln for ln in p.log[-5:]):
                break
            printer.line(a.name, f"tbx: a parallel pull moved the base image's name; building {a.name} again", True)
        if builds.stopping.is_set():
            p.status, p.error = "interrupted", "interrupted"
            return
        if rc != 0:
            tail = [ln for ln in p.log if ln.strip()][-LOG_TAIL:]
            if node and nodes.connection_failed(rc, "\n".join(tail)):
                reason, p.fix = nodes.classify("\n".join(tail), node)
                p.status, p.error = "failed", reason
                return
            p.status, p.error = "failed", "\n".join(tail) or f"podman build exited with {rc}"
            p.streamed = bool(tail)
            return
        data = _inspect(podman, p.image)
        if data is None:
            p.status, p.error = "failed", f"the built image {p.image} is not in storage"
            return
        got = (data.get("Os", ""), data.get("Architecture", ""), data.get("Variant") or "")
        want_variant = a.oci_variant or ""
        if got[0] != "linux" or got[1] != a.oci_arch or (got[2] and want_variant and got[2] != want_variant):
            p.status = "failed"
            p.error = (f"the built image is {'/'.join(x for x in got if x)}, not {a.platform}: check the FROM "
                       f"lines (a stage pinned to another --platform)")
            return
        kept = node is not None and keep_on_node
        if kept:
            pass  # pushed from the node, later: the registry gets nothing unless every arch is built
        elif node:  # built on the node: copied into local storage, and kept there
            printer.line(a.name, f"tbx: copying {p.image} from {node.name} into local storage", True)
            p.digest = _copy_into_local(podman, p.image)
        elif own_storage:
            p.digest = _move_to_root_storage(podman, p.image)
        else:
            p.digest = data.get("Digest") or None
        if not kept:  # tbx stored it: `tbx list` shows it, `tbx rmi` may remove it
            p.image_id = data["Id"]  # (the same in root's storage, or here from a node: the config's digest)
            images.record(p.image, p.image_id)
        p.size = int(data.get("Size") or 0)
        p.status = "ok"
    except TbxError as e:
        p.status, p.error = "failed", e.message
    finally:
        p.seconds = round(time.monotonic() - start, 2)


_PODMANS_ARGS = {"TARGETARCH", "TARGETOS", "TARGETPLATFORM", "TARGETVARIANT", "BUILDARCH", "BUILDOS",
                 "BUILDPLATFORM", "BUILDVARIANT"}
_UNCONSUMED = "[Warning] one or more build args were not consumed: ["


def _without_podmans_args(line: str) -> str | None:
    """podman 4 warns on every --platform build that the build arguments it sets itself
    (TARGETARCH, …) were not consumed: that line goes (None), or keeps only the user's own."""
    if not line.startswith(_UNCONSUMED) or not line.endswith("]"):
        return line
    mine = [a for a in line[len(_UNCONSUMED):-1].split() if a not in _PODMANS_ARGS]
    return f"{_UNCONSUMED}{' '.join(mine)}]" if mine else None


def _empty_build_storage(env: buildenv.Env) -> None:
    """Root's build storage keeps nothing once a build is over, failed or interrupted ones
    included (and a build starts by removing what a killed one left): its results were moved to
    root's storage, and anything else (base images, intermediate layers, a failed step's image)
    would be invisible to podman images and tbx list. Not while another root build shares it."""
    if env.others_building():
        return
    runner.run([*env.podman, "rm", "--all", "--force", "--time", "0"], timeout=300)
    ext = runner.run([*env.podman, "ps", "--all", "--external", "--quiet"], timeout=120).stdout.split()
    if ext:  # buildah's working containers
        runner.run([*env.podman, "rm", "--storage", "--force", *ext], timeout=300)
    runner.run([*env.podman, "image", "prune", "--all", "--force"], timeout=600)


def _move_to_root_storage(podman: list[str], image: str) -> str:
    """Root builds store into storage of their own (inside their user namespace); move each
    result into root's normal storage so that podman, tbx create and --push see it. Returns the
    manifest digest stored there."""
    digest = _copy_into_local(podman, image, owner=buildenv.root_storage_owner())
    runner.run([*podman, "rmi", image], timeout=300)
    return digest


def _copy_into_local(podman: list[str], image: str, owner: tuple[int, int] | None = None) -> str:
    """``image`` from the storage ``podman`` works on (the build storage, or a node through its
    connection) into this user's storage, under the same name. Returns its manifest digest.
    ``owner``: the ids that podman writes the archive as (root's build namespace)."""
    with tempfile.TemporaryDirectory(prefix="tbx-build-", dir="/var/tmp") as d:
        if owner:
            os.chown(d, *owner)
        arc, digestfile = os.path.join(d, "image.tar"), os.path.join(d, "digest")
        r = runner.run([*podman, "save", "--format", "oci-archive", "--output", arc, image], timeout=1800)
        if r.returncode != 0:
            raise TbxError(f"saving {image} from the build storage failed", details=r.stderr.strip()[-400:],
                           exit_code=EXIT_ENGINE)
        r = runner.run(["skopeo", "copy", "--quiet", "--digestfile", digestfile, f"oci-archive:{arc}",
                        f"containers-storage:{image}"], timeout=1800)
        if r.returncode != 0:
            raise TbxError(f"storing {image} in root's storage failed", details=r.stderr.strip()[-400:],
                           exit_code=EXIT_ENGINE)
        with open(digestfile) as f:
            return f.read().strip()


def _registry_args(tls_verify: bool | None, authfile: str | None) -> list[str]:
    """podman's flags for a registry: TLS verification and the credentials file."""
    return [*skopeo.tls_args(tls_verify), *(["--authfile", authfile] if authfile else [])]


def _registry_digests(ref: naming.Reference, index_digest: str, platforms: list[Platform], tls_verify: bool | None,
                      authfile: str | None) -> None:
    """After a push: each platform's DIGEST is the manifest digest the registry's index lists for
    it (podman may compress again when it pushes, so the local one need not be the registry's)."""
    r = runner.run(["skopeo", "inspect", "--raw", *_registry_args(tls_verify, authfile),
                    f"docker://{ref.repository}@{index_digest}"], timeout=300)
    try:
        listed = json.loads(r.stdout).get("manifests", []) if r.returncode == 0 else []
    except ValueError:
        listed = []
    for p in platforms:
        variant = p.platform.split("/")[2] if p.platform.count("/") == 2 else None
        for m in listed:
            plat = m.get("platform") or {}
            if plat.get("architecture") == p.oci_arch and (variant is None or plat.get("variant") in (None, variant)):
                p.digest = m.get("digest")
                break


def _push_from_node(node: nodes.Node, image: str, tls_verify: bool | None, authfile: str | None) -> None:
    r = runner.run([*node.podman, "push", *_registry_args(tls_verify, authfile), image, f"docker://{image}"],
                   timeout=3600)
    if r.returncode != 0:
        raise TbxError(f"pushing {image} from {node.name} failed", details=r.stderr.strip()[-400:],
                       fix=f"The node pushes it itself: it must reach the registry and hold its credentials "
                           f"(podman --connection {node.name} login REGISTRY)")


def _assemble(ref: str, platforms: list[Platform], tls_verify: bool | None = None, authfile: str | None = None) -> None:
    """The manifest list ``ref`` of the platforms' images (local ones from storage, ones pushed
    from a node from the registry); one made by an earlier build is replaced."""
    argv = ["podman", "manifest", "create", ref,
            *(f"containers-storage:{p.image}" for p in platforms if not p.on_registry)]
    r = runner.run(argv, timeout=600)
    if r.returncode != 0 and runner.run(["podman", "manifest", "inspect", ref], timeout=60).returncode == 0:
        runner.run(["podman", "manifest", "rm", ref], timeout=60)
        r = runner.run(argv, timeout=600)
    if r.returncode != 0:
        if runner.run(["podman", "image", "exists", ref], timeout=60).returncode == 0:
            raise TbxError(f"{ref} already names an image that is not a manifest list",
                           fix=f"Remove it (podman rmi {ref}) or build under another --tag")
        raise TbxError(f"creating the manifest list {ref} failed", details=r.stderr.strip()[-400:],
                       exit_code=EXIT_ENGINE)
    remote = [p for p in platforms if p.on_registry]
    for p in remote:
        r = runner.run(["podman", "manifest", "add", *_registry_args(tls_verify, authfile), ref,
                        f"docker://{p.image}"], timeout=600)
        if r.returncode != 0:
            raise TbxError(f"adding {p.image} (pushed from {p.where}) to {ref} failed",
                           details=r.stderr.strip()[-400:], exit_code=EXIT_ENGINE)
    if remote:  # their digests, as the list records them
        r = runner.run(["podman", "manifest", "inspect", ref], timeout=60)
        listed = json.loads(r.stdout).get("manifests", []) if r.returncode == 0 else []
        for p in remote:
            p.digest = next((m.get("digest") for m in listed
                             if (m.get("platform") or {}).get("architecture") == p.oci_arch), None)


def _push(ref: naming.Reference, authfile: str | None, tls_verify: bool | None) -> str:
    with tempfile.TemporaryDirectory(prefix="tbx-push-") as d:
        digestfile = os.path.join(d, "digest")
        argv = ["podman", "manifest", "push", "--all", "--quiet", *_registry_args(tls_verify, authfile),
                "--digestfile", digestfile]
        r = runner.run([*argv, str(ref), f"docker://{ref}"], timeout=3600)
        if r.returncode != 0:
            raise skopeo.classify(r.stderr, ref, authfile, tls_verify)
        with open(digestfile) as f:
            return f.read().strip()


def _plan_nodes(wanted: list[archmod.Arch], plats: list[Platform], pairs: list[str], local: bool,
                fallback_local: bool) -> dict[str, nodes.Node]:
    """{arch name: node} of the arches built on a podman connection's machine. Every node is
    asked (its arch and whether it answers) before anything is built; a node of another arch is
    refused; one that does not answer fails its arch (or, --fallback-local, leaves it here)."""
    from ..config import load

    plan = nodes.mapping(wanted, pairs, local, load().connections)
    if not plan:
        return {}
    states = nodes.probe_all(nodes.all_nodes(plan))
    nodes.remember(states.values())
    nodes.check_arches(plan, states)
    by_arch = dict(zip((a.name for a in wanted), plats))
    out = {}
    for a, (use, skipped) in nodes.pick(plan, states).items():
        p = by_arch[a.name]
        if use:
            out[a.name] = use[0]
            p.where = use[0].name
            for s in skipped:
                output.note(f"{a.name}: {s.error}; building on {use[0].name}")
        elif fallback_local:
            p.fallback = "; ".join(s.error for s in skipped)
        else:
            msg, fix, details = nodes.down_error(a, skipped)
            p.where, p.status, p.fix = ",".join(s.node.name for s in skipped), "failed", fix
            p.error = msg + (": " + "; ".join(details.splitlines()) if details else "")
    return out


def build(context: str, *, arches: str, tag: str, file: str | None, build_args: list[str], push: bool,
          jobs: int | None, json_out: bool, keep_going: bool, authfile: str | None = None,
          tls_verify: bool | None = None, connections: list[str] = (), local: bool = False,
          fallback_local: bool = False) -> int:
    wanted = parse_arches(arches)
    ref = parse_tag(tag)
    containerfile = find_containerfile(context, file)
    for kv in build_args:
        if "=" not in kv or kv.startswith("="):
            raise TbxError(f"--build-arg {kv!r} is not KEY=VALUE", fix="Write it as --build-arg NAME=value")
    if jobs is not None and jobs < 1:
        raise TbxError("--jobs must be 1 or more", fix="Use --jobs 1 to build one arch at a time")
    if authfile and not os.path.isfile(authfile):
        raise TbxError(f"authfile {authfile} does not exist", fix="Check the --authfile path")
    host_arch = archmod.host()
    plats = [Platform(a.name, a.oci_arch, a.platform, arch_image(ref, a)) for a in wanted]
    on_node = _plan_nodes(wanted, plats, list(connections), local, fallback_local)
    failed = [p.arch for p in plats if p.status == "failed"]
    if failed and not keep_going:  # nothing could be assembled: build nothing
        for p in plats:
            if p.status == "pending":
                p.status, p.error = "skipped", (f"not built: {', '.join(failed)} failed before starting, so nothing "
                                                "could be assembled (--keep-going builds the others anyway)")
        _report(plats, ref, False, False, None, json_out)
        return 1
    here = [a for p, a in zip(plats, wanted) if a.name not in on_node and p.status == "pending"]
    lines = _registration_lines(here, host_arch)
    base_args = []
    for kv in build_args:
        base_args += ["--build-arg", kv]
    given = [*_registry_args(tls_verify, authfile), "--file", os.path.abspath(containerfile),
             os.path.abspath(context)]
    printer = output.PrefixPrinter([a.name for a in wanted], quiet=json_out)
    builds = _Builds()
    n = jobs or max(1, min(len(here), os.cpu_count() or 1) + len(on_node))
    with buildenv.emulation(lines, [a for a in here if a not in lines]) as env, \
            buildenv.readable_inputs(containerfile, context, authfile, env) as (ns_file, ns_context, ns_auth):
        # root's namespace reads copies of its own when root's files are not readable by others
        ns_args = [*base_args, *_registry_args(tls_verify, ns_auth), "--file", ns_file, ns_context]
        # (build prefix, storage commands, own storage?) per arch: emulated ones (root: all) in the env
        how = {a: (env.build_argv(a), env.podman, env.own_storage) if env.own_storage and a in env.builds else
               (env.build_argv(a), ["podman"], False) for a in here}
        storages = {tuple(h[1]) for h in how.values()}
        options = {a: env.build_options(a) for a in how}
        if env.own_storage:  # what a killed root build left (a SIGKILL skips the clean-up below)
            _empty_build_storage(env)
        since = time.time()
        pool = ThreadPoolExecutor(max_workers=n)
        started = [p for p, a in zip(plats, wanted) if a in how or a.name in on_node]
        for p in started:
            p.queued_at = time.monotonic()
        for p in started[n:]:  # the pool starts them as slots free up: say so now, not silently later
            printer.line(p.arch, f"tbx: waiting for a build slot ({n} running, --jobs {n})", True)
        futures = [pool.submit(_build_one, p, a, *how[a], ns_args if how[a][2] else [*base_args, *given], printer,
                               builds, options=options[a])
                   if a in how else
                   pool.submit(_build_one, p, a, on_node[a.name].podman, on_node[a.name].podman, False,
                               [*base_args, *given], printer, builds, on_node[a.name], push)
                   for p, a in zip(plats, wanted) if a in how or a.name in on_node]
        try:
            try:
                output.wait_all(futures)
            except KeyboardInterrupt:
                builds.stop_all()
                pool.shutdown(wait=True)
                for s in storages:
                    _remove_leftovers(list(s), since, env)
                raise
            pool.shutdown(wait=True)
        finally:
            if env.own_storage:
                _empty_build_storage(env)
    ok = [p for p in plats if p.status == "ok"]
    index_digest, pushed, assembled = None, False, False
    if push and ok and (len(ok) == len(plats) or keep_going):
        for p in ok:  # built on a node: pushed from there, straight to the registry
            if p.where != "local":
                printer.line(p.arch, f"tbx: pushing {p.image} from {p.where}", True)
                try:
                    _push_from_node(on_node[p.arch], p.image, tls_verify, authfile)
                    p.on_registry = True
                except TbxError as e:
                    p.status, p.error, p.fix = "failed", e.message + (f"\n{e.details}" if e.details else ""), e.fix
        ok = [p for p in plats if p.status == "ok"]
    if ok and (len(ok) == len(plats) or keep_going):
        _assemble(str(ref), ok, tls_verify, authfile)
        assembled = True
        if push:
            index_digest = _push(ref, authfile, tls_verify)
            pushed = True
            _registry_digests(ref, index_digest, ok, tls_verify, authfile)
    _report(plats, ref, assembled, pushed, index_digest, json_out)
    return 0 if len(ok) == len(plats) else 1


def _report(plats: list[Platform], ref: naming.Reference, assembled: bool, pushed: bool, digest: str | None,
            json_out: bool) -> None:
    """The build's outcome: --json, or the table and warnings."""
    if json_out:
        output.print_json({"schema": SCHEMA, "tag": str(ref), "assembled": assembled, "index_digest": digest,
                           "pushed": pushed, "platforms": [p.as_dict() for p in plats]})
    else:
        _render(plats, ref, assembled, pushed, digest)


def _render(plats: list[Platform], ref: naming.Reference, assembled: bool, pushed: bool, digest: str | None) -> None:
    """The table, then one warning per failed arch: its reason, or (when the reason is its log's
    last lines, already shown as they streamed) a pointer to them, so nothing is printed twice."""
    rows = []
    for p in plats:
        shown = p.digest if pushed else (p.image_id or p.digest)
        short = (shown or "").split(":")[-1][:12]
        took = f"{p.seconds:.1f}s" + (f" (+{p.waited:.1f}s queued)" if p.waited >= 0.5 else "")
        rows.append([p.arch, p.status, p.where + (" (fallback)" if p.fallback else ""), short or "-",
                     output.human_size(p.size) if p.size else "-", took])
    # pushed: the manifest digests the registry's index lists; else the local images' ids
    output.table(None, ["ARCH", "STATUS", "WHERE", "DIGEST (REGISTRY)" if pushed else "IMAGE ID", "SIZE", "TIME"],
                 rows)
    for p in plats:
        if p.fallback:
            output.warn(f"{p.arch}: built here instead (--fallback-local): {p.fallback}")
        if p.error:
            why = f"the build failed (its last lines are above: {p.error.splitlines()[-1][:120]})" \
                if p.streamed else p.error
            output.warn(f"{p.arch}: {why}" + (f"\n  fix: {p.fix}" if p.fix else ""))
    if pushed:
        output.line(f"pushed {ref}@{digest}")
    elif assembled:
        output.info(f"manifest list {ref}: {', '.join(p.platform for p in plats if p.status == 'ok')}")
    else:
        output.info(f"nothing assembled: {sum(p.status != 'ok' for p in plats)} of {len(plats)} arches failed "
                    "(--keep-going assembles the others)")
