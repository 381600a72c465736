"""skopeo inspect/copy for one architecture, honestly.

- The raw manifest says whether a reference is an index: then the platform's own manifest is
  selected from it by digest (skopeo 1.9's ``Digest`` reports the index's digest for every
  platform), and a platform the index does not offer is an error listing what it offers.
- A single-arch image is never accepted for another arch: skopeo's ``--override-arch`` silently
  returns it, so the delivered ``Architecture`` is always compared with the one asked.
- Every registry failure gets its own one-line reason and fix (DNS, refused, TLS, 401, unknown
  repository, unknown tag), never "architecture not supported".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field

from . import runner
from .arch import Arch
from .errors import TbxError
from .naming import Reference, normalize

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass
class Platform:
    os: str
    architecture: str
    variant: str | None
    digest: str

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


@dataclass
class ImageInfo:
    reference: str            # as given, normalized
    pinned: str               # repository@digest of the selected platform's manifest
    digest: str               # that manifest's digest
    os: str
    architecture: str
    variant: str | None
    created: str | None
    layers: int
    size: int                 # compressed bytes, sum of layers
    multi_arch: bool
    index_digest: str | None
    platforms: list[Platform] = field(default_factory=list)
    layer_sizes: dict[str, int] = field(default_factory=dict)  # blob digest -> compressed bytes

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("layer_sizes")
        d["platform"] = f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")
        d["platforms"] = [{**asdict(p), "platform": str(p)} for p in self.platforms]
        return d


def tls_args(tls_verify: bool | None, prefix: str = "") -> list[str]:
    """podman's and skopeo's rule: no flag (None) lets registries.conf decide (insecure = true
    there means HTTP); True forces verification, False turns it off."""
    return [] if tls_verify is None else [f"--{prefix}tls-verify={'true' if tls_verify else 'false'}"]


def _auth_args(authfile: str | None, tls_verify: bool | None, prefix: str = "") -> list[str]:
    args = []
    if authfile:
        args += [f"--{prefix}authfile", authfile]
    return args + tls_args(tls_verify, prefix)


def _override_args(a: Arch) -> list[str]:
    args = ["--override-os", "linux", "--override-arch", a.oci_arch]
    if a.oci_variant and a.oci_arch == "arm":  # arm/v6 vs v7 matters; arm64's v8 is implied
        args += ["--override-variant", a.oci_variant]
    return args


def classify(stderr: str, ref: Reference, authfile: str | None, tls_verify: bool | None = None) -> TbxError:
    """Turn skopeo's stderr into one reason and one fix."""
    text = stderr.strip()
    msg = re.findall(r'msg="((?:[^"\\]|\\.)*)"', text)
    last = (msg[-1] if msg else text.splitlines()[-1] if text else "unknown error").replace('\\"', '"')
    last = re.sub(r'^Error parsing image name "[^"]*": ', "", last)
    host = ref.domain or "docker.io"
    low = text.lower()
    if "no such host" in low or "server misbehaving" in low or "temporary failure in name resolution" in low:
        return TbxError(f"registry {host} could not be found (DNS lookup failed)", details=last,
                        fix=f"Check the registry name in {ref} and your network/DNS settings")
    if "connection refused" in low:
        return TbxError(f"registry {host} refused the connection", details=last,
                        fix="Check the registry address and port, and that the registry is running")
    if ("i/o timeout" in low or "no route to host" in low or "network is unreachable" in low
            or "handshake timeout" in low or "deadline exceeded" in low or "timeout awaiting" in low):
        return TbxError(f"registry {host} cannot be reached", details=last, fix="Check your network connection")
    if "http response to https client" in low or "x509" in low or "certificate" in low or "tls:" in low:
        return TbxError(f"TLS connection to {host} failed", details=last,
                        fix=f"Use a registry with a valid certificate, or --no-tls-verify for {host} if you trust it "
                            f"(or mark it insecure = true in registries.conf, as for podman)")
    if "unauthorized" in low or "authentication required" in low or "denied" in low or " 401" in low:
        if authfile:
            return TbxError(f"registry {host} rejected the credentials in {authfile}", details=last,
                            fix=f"podman login --authfile {authfile} {host}")
        return TbxError(f"registry {host} requires authentication", details=last,
                        fix=f"podman login {host}, or pass --authfile FILE")
    if "manifest unknown" in low and ref.digest:
        return TbxError(f"{ref.repository} has no manifest {ref.digest}", details=last,
                        fix=f"Check the digest; 'tbx image inspect {ref.repository}:TAG --arch ARCH' shows the digests")
    if "manifest unknown" in low:
        tags = _list_tags(ref, authfile, tls_verify)
        if tags is None:
            return TbxError(f"repository {ref.repository} does not exist", details=last,
                            fix="Check the image name for typos")
        shown = ", ".join(tags[:10]) + (" …" if len(tags) > 10 else "")
        return TbxError(f"{ref} was not found: the repository has no tag {ref.tag or ref.digest!r}",
                        details=f"Tags it has: {shown or 'none'}", fix="Use one of those tags")
    if "name unknown" in low or "repository name not known" in low or "not found" in low:
        return TbxError(f"repository {ref.repository} does not exist", details=last,
                        fix="Check the image name for typos")
    return TbxError(f"skopeo failed for {ref}", details=last,
                    fix=f"Check the reference and the registry: skopeo inspect docker://{ref}")


def _skopeo(args: list[str], ref: Reference, authfile: str | None, text: bool = True):
    r = runner.run(["skopeo", *args], timeout=600, text=text)
    if r.returncode != 0:
        err = r.stderr if text else r.stderr.decode(errors="replace")
        raise classify(err, ref, authfile, "--tls-verify=false" not in args)
    return r.stdout


def _list_tags(ref: Reference, authfile: str | None, tls_verify: bool | None) -> list[str] | None:
    """The repository's tags, or None when the repository does not exist."""
    r = runner.run(["skopeo", "list-tags", *_auth_args(authfile, tls_verify), f"docker://{ref.repository}"],
                   timeout=120)
    if r.returncode != 0:
        return None
    try:
        return sorted(json.loads(r.stdout).get("Tags") or [])
    except ValueError:
        return []


def _platforms(index: dict) -> list[Platform]:
    out = []
    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        if p.get("architecture") in (None, "unknown"):
            continue  # attestation manifests and the like
        out.append(Platform(p.get("os", "?"), p["architecture"], p.get("variant"), m["digest"]))
    return out


def select(platforms: list[Platform], a: Arch) -> Platform | None:
    matches = [p for p in platforms if p.os == "linux" and p.architecture == a.oci_arch]
    if a.oci_variant:
        exact = [p for p in matches if p.variant == a.oci_variant]
        if exact:
            return exact[0]
        if a.oci_arch == "arm":  # arm/v6 cannot stand in for v7 the other way round; accept unknown only
            matches = [p for p in matches if p.variant in (None, "", "v7")]
    return matches[0] if matches else None


def inspect(ref: str, a: Arch, *, authfile: str | None = None, tls_verify: bool | None = None,
            sizes: bool = True) -> ImageInfo:
    """What the registry offers for ``a``, verified. ``sizes=False`` skips fetching the
    platform's own manifest (layer sizes) when only the selection and the arch are needed."""
    r = normalize(ref)
    opts = _auth_args(authfile, tls_verify)
    raw = _skopeo(["inspect", "--raw", *opts, f"docker://{r}"], r, authfile, text=False)
    try:
        manifest = json.loads(raw)
    except ValueError as e:
        raise TbxError(f"{r}: the registry returned a manifest that is not JSON") from e
    media = manifest.get("mediaType", "")
    platforms: list[Platform] = []
    index_digest = None
    if media in INDEX_TYPES or "manifests" in manifest:
        platforms = _platforms(manifest)
        index_digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        chosen = select(platforms, a)
        if chosen is None:
            offered = ", ".join(str(p) for p in platforms) or "nothing"
            raise TbxError(f"{r} has no linux/{a.oci_arch} image; it offers: {offered}",
                           fix="Pick an architecture the image offers (tbx image inspect REF --arch …)")
        digest = chosen.digest
    else:
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    pinned = f"{r.repository}@{digest}"
    if platforms:
        manifest = {}
        if sizes:
            manifest = json.loads(_skopeo(["inspect", "--raw", *opts, f"docker://{pinned}"], r, authfile, text=False))
    chosen_variant = next((p.variant for p in platforms if p.digest == digest), None)
    data = json.loads(_skopeo(["inspect", *_override_args(a), *opts, f"docker://{pinned}"], r, authfile))
    layers = manifest.get("layers") or manifest.get("fsLayers") or []
    info = ImageInfo(
        reference=str(r), pinned=pinned, digest=digest, os=data.get("Os", "linux"),
        architecture=data.get("Architecture", "?"), variant=data.get("Variant") or chosen_variant,
        created=data.get("Created"), layers=len(data.get("Layers") or layers),
        size=sum(int(x.get("size") or 0) for x in layers), multi_arch=bool(platforms),
        index_digest=index_digest, platforms=platforms,
        layer_sizes={x["digest"]: int(x.get("size") or 0) for x in layers if x.get("digest")})
    verify(info, a)
    return info


def verify(info: ImageInfo, a: Arch) -> None:
    if info.architecture != a.oci_arch or info.os != "linux":
        what = f"{info.os}/{info.architecture}"
        if not info.multi_arch:
            raise TbxError(f"{info.reference} is a single-architecture {what} image, not linux/{a.oci_arch}",
                           details="(skopeo returns it for any --override-arch; tbx does not accept it)",
                           fix=f"Use an image built for {a.name}, or create a {info.architecture} container instead")
        raise TbxError(f"{info.reference} delivered a {what} image for linux/{a.oci_arch}")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


_UNITS = {"b": 1, "B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "kB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}


def _bytes(num: str, unit: str) -> int:
    return int(float(num) * _UNITS.get(unit, 1))


def _layer_size(sizes: dict[str, int], short: str) -> int | None:
    """The size of the layer whose digest starts with ``short`` (skopeo shows 12 hex digits)."""
    return next((v for k, v in sizes.items() if k.split(":")[-1].startswith(short)), None)


class _BarReader:
    """Bytes copied so far, from the progress bars skopeo draws on a terminal (a pty here):
    ``Copying blob 90bfa056a673 [===>----] 11.5MiB / 57.1MiB`` and ``Copying blob … done``."""

    ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
    BAR = re.compile(r"Copying (blob|config) ([0-9a-f]{8,}).*?([\d.]+)\s*([KMG]?i?B|b) / ([\d.]+)\s*([KMG]?i?B|b)")
    DONE = re.compile(r"Copying (blob|config) (?:sha256:)?([0-9a-f]{8,}) (?:done|skipped)")

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.now: dict[str, int] = {}
        self.buf = ""

    def feed(self, text: str) -> int:
        self.buf += self.ANSI.sub("", text)
        *lines, self.buf = self.buf.replace("\r", "\n").split("\n")
        for line in lines:
            m = self.BAR.search(line)
            if m and m.group(1) == "blob":
                self.now[m.group(2)] = _bytes(m.group(3), m.group(4))
                continue
            m = self.DONE.search(line)
            if m and m.group(1) == "blob":
                self.now[m.group(2)] = _layer_size(self.sizes, m.group(2)) or self.now.get(m.group(2), 0)
        return sum(self.now.values())


def copy(info: ImageInfo, a: Arch, dest: str, *, authfile: str | None = None, tls_verify: bool | None = None,
         on_line=None, on_bytes=None, dest_ref: str | None = None) -> None:
    """skopeo copy the pinned manifest into containers-storage:DEST (or to ``dest_ref``, a full
    skopeo destination such as ``oci:DIR:TAG``).

    ``on_bytes(done)``: skopeo draws its progress bars into a pty, and the bytes they show are
    reported (for a progress bar with a percentage on tbx's terminal). ``on_line``: one line per
    layer as its copy starts (number, digest, size), for logs. Neither: skopeo runs quiet."""
    import subprocess

    r = normalize(info.reference)
    quiet = ["-q"] if on_line is None and on_bytes is None else []
    args = ["skopeo", "copy", *quiet, *_override_args(a), *_auth_args(authfile, tls_verify, "src-"),
            f"docker://{info.pinned}", dest_ref or f"containers-storage:{dest}"]
    import tempfile

    blob = re.compile(r"Copying blob (?:sha256:)?([0-9a-f]{12,})")
    seen: list[str] = []
    master = slave = -1
    if on_bytes is not None:
        import fcntl
        import pty
        import struct
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    # stderr goes to a file: a pipe that nobody drains while stdout is read would block skopeo.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errf:
        try:
            proc = runner.popen(args, stdout=slave if slave >= 0 else subprocess.PIPE, stderr=errf,
                                text=True, bufsize=1, die_with_parent=True)
        finally:
            if slave >= 0:
                os.close(slave)
        try:
            if master >= 0:
                bars = _BarReader(info.layer_sizes)
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: skopeo closed the terminal
                        break
                    if not chunk:
                        break
                    on_bytes(bars.feed(chunk.decode("utf-8", "replace")))
            for line in proc.stdout or ():
                m = blob.search(line)
                if on_line and m and m.group(1) not in seen:
                    seen.append(m.group(1))
                    size = _layer_size(info.layer_sizes, m.group(1))
                    total = len(info.layer_sizes) or info.layers
                    on_line(f"layer {len(seen)}/{total} sha256:{m.group(1)[:12]}"
                            + (f" ({_mb(size)})" if size is not None else ""))
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if master >= 0:
                os.close(master)
        errf.seek(0)
        err = errf.read()
    if rc != 0:
        raise classify(err, r, authfile, tls_verify)
