"""Issue 14: `tbx build` — multi-arch images with no root and no host binfmt entry.

The host's qemu entries are disabled for the whole suite (provisioning), so every emulated RUN
step below can only work through tbx's private registration. Each platform's /arch is read back
from the pushed index without QEMU: the layers are copied out with skopeo and read as tar files.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from .conftest import TBX

ARCHES = {"arm64": "aarch64", "s390x": "s390x", "amd64": "x86_64"}  # oci arch -> uname -m


@pytest.fixture
def ctx(host, request):
    """A build context readable by the test user, with a Containerfile FROM the busybox index."""
    d = tempfile.mkdtemp(prefix="tbxt-build-")
    os.chmod(d, 0o755)

    def write(body: str) -> str:
        with open(os.path.join(d, "Containerfile"), "w") as f:
            f.write(f"FROM {host['TBX_TEST_BUSYBOX_REF']}\n{body}\n")
        os.chmod(os.path.join(d, "Containerfile"), 0o644)
        return d

    yield write
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ref(host, root, rootless):
    """A fresh reference in the local registry; what any test stored under it (both users) goes."""
    name = f"{host['TBX_TEST_REGISTRY']}/tbx-test/built-{uuid.uuid4().hex[:8]}:1"
    yield name
    repo = name.rsplit(":", 1)[0]
    for runner in (root, rootless):
        images = runner.podman("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
        mine = [i for i in images if i.startswith(repo + ":")]
        for m in mine:
            runner.podman("manifest", "rm", m)
        mine = [i for i in runner.podman("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
                if i.startswith(repo + ":")]
        if mine:
            runner.podman("rmi", "-f", *mine)


def _skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)


def pushed_platforms(ref: str) -> dict[str, str] | None:
    """{oci arch: content of /arch} of the pushed index, read from its layers; None: no such tag."""
    r = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    if r.returncode != 0:
        assert "manifest unknown" in r.stderr or "not found" in r.stderr.lower(), r.stderr
        return None
    index = json.loads(r.stdout)
    assert "manifests" in index, index
    repo = ref.rsplit(":", 1)[0]
    out = {}
    for m in index["manifests"]:
        with tempfile.TemporaryDirectory() as d:
            c = _skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{repo}@{m['digest']}", f"dir:{d}")
            assert c.returncode == 0, c.stderr
            manifest = json.load(open(os.path.join(d, "manifest.json")))
            content = None
            for layer in manifest["layers"]:
                data = open(os.path.join(d, layer["digest"].split(":", 1)[1]), "rb").read()
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                with tarfile.open(fileobj=io.BytesIO(data)) as t:
                    for member in t.getmembers():
                        if member.name.lstrip("./") == "arch":
                            content = t.extractfile(member).read().decode().strip()
            out[m["platform"]["architecture"]] = content
    return out


def registrations(who) -> list[str]:
    """Entries in the test user's podman namespace under tbx's mount (rootless); root's builds
    have namespaces of their own that end with them, so there is nothing to look at."""
    if not who.rootless:
        return []
    r = who.podman("unshare", "sh", "-c",
                   'd=$XDG_RUNTIME_DIR/tbx/build/binfmt; grep -q " $d " /proc/self/mountinfo || exit 0; ls "$d"')
    assert r.rc == 0, r.err
    return [n for n in r.out.split() if n not in ("register", "status")]


def assert_no_emulation(who, image: str) -> None:
    r = who.podman("run", "--rm", "--network", "host", image, "/bin/true")
    assert r.rc != 0 and "exec format error" in r.text, r.text
    assert registrations(who) == []


def test_three_arches_pushed_as_one_index(who, ctx, ref):
    d = ctx("RUN uname -m > /arch")
    r = who.tbx("build", d, "--arch", "arm64,s390x,x86_64", "--tag", ref, "--push", "--no-tls-verify", "--json",
                timeout=900)
    assert r.rc == 0, r.text
    res = json.loads(r.out)
    assert res["schema"] == 1 and res["pushed"] is True and res["index_digest"].startswith("sha256:")
    assert [(p["arch"], p["status"]) for p in res["platforms"]] == [
        ("aarch64", "ok"), ("s390x", "ok"), ("x86_64", "ok")]
    assert all(p["digest"] and p["size"] > 0 and p["seconds"] > 0 for p in res["platforms"])
    assert pushed_platforms(ref) == ARCHES
    # the per-arch images are in the builder's normal storage, under REF-<oci arch>
    for oci in ARCHES:
        assert who.image_id(f"{ref}-{oci}"), oci
    assert_no_emulation(who, f"{ref}-arm64")


def test_a_created_container_of_the_built_image(who, ctx, ref, cleanup, name):
    d = ctx("RUN uname -m > /arch")
    assert who.tbx("build", d, "--arch", "aarch64", "--tag", ref, "--no-tls-verify", timeout=600).rc == 0
    cleanup(who, name)
    r = who.tbx("create", name, "--arch", "aarch64", "--image", f"{ref}-arm64", "-y", timeout=300)
    assert r.rc == 0, r.text
    r = who.tbx("run", "-c", name, "cat", "/arch")
    assert (r.rc, r.out.strip()) == (0, "aarch64"), r.text


def test_two_builds_at_once_share_the_registration(who, ctx, ref):
    d = ctx("RUN uname -m > /arch && sleep 2")
    argv = [TBX, "build", d, "--arch", "aarch64", "--no-tls-verify", "--json"]
    procs = [subprocess.Popen(who.argv([*argv, "--tag", f"{ref[:-2]}:{n}"]), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd="/", env=None if who.rootless else who.env)
             for n in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err
        assert json.loads(out)["platforms"][0]["status"] == "ok"
    assert_no_emulation(who, f"{ref[:-2]}:a-arm64")


def test_one_failing_arch_pushes_nothing_unless_keep_going(root, ctx, ref):
    d = ctx('RUN uname -m > /arch && test "$(uname -m)" != s390x')
    r = root.tbx("build", d, "--arch", "aarch64,s390x", "--tag", ref, "--push", "--no-tls-verify", timeout=600)
    assert r.rc == 1
    rows = {l.split()[0]: l.split()[1] for l in r.out.splitlines() if l.split()[:1] in (["aarch64"], ["s390x"])}
    assert rows == {"aarch64": "ok", "s390x": "failed"}, r.out
    assert "s390x:" in r.err and "exit status 1" in r.err, r.err
    assert pushed_platforms(ref) is None
    r = root.tbx("build", d, "--arch", "aarch64,s390x", "--tag", ref, "--push", "--keep-going", "--no-tls-verify",
                 "--json", timeout=600)
    assert r.rc == 1, r.text
    res = json.loads(r.out)
    assert res["pushed"] is True
    assert {p["arch"]: p["status"] for p in res["platforms"]} == {"aarch64": "ok", "s390x": "failed"}
    assert pushed_platforms(ref) == {"arm64": "aarch64"}


def test_ctrl_c_leaves_no_registration_container_or_index(who, ctx, ref):
    d = ctx("RUN uname -m > /arch && sleep 60")
    p = subprocess.Popen(who.argv([TBX, "build", d, "--arch", "aarch64", "--tag", ref, "--push", "--no-tls-verify"]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/",
                         env=None if who.rootless else who.env, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in p.stdout:
        seen.append(line)
        if "sleep 60" in line or time.monotonic() > deadline:
            break
    time.sleep(3)  # the RUN step is running, under emulation
    os.killpg(p.pid, signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    assert p.returncode == 130, "".join(seen) + rest
    assert pushed_platforms(ref) is None
    ext = who.podman("ps", "-a", "--external", "--format", "{{.Names}}")
    assert "working-container" not in ext.out, ext.out  # buildah's build containers
    left = subprocess.run(["pgrep", "-af", "sleep 60$"], capture_output=True, text=True).stdout
    assert left.strip() == "", left
    assert registrations(who) == []


@pytest.mark.parametrize("args,needle", [
    (["--arch", "arm65"], "not supported"),
    (["--arch", "arm64,aarch64"], "given twice"),
    (["--arch", "arm64", "--file", "/nonexistent/Containerfile"], "does not exist"),
    (["--arch", "arm64", "--tag", "Bad Ref"], "not a valid image reference"),
    (["--arch", "arm64", "--context-is-file"], "is not a directory"),
])
def test_bad_input_builds_nothing(root, ctx, ref, args, needle):
    d = ctx("RUN uname -m > /arch")
    context = d
    if "--context-is-file" in args:
        args = [a for a in args if a != "--context-is-file"]
        context = os.path.join(d, "Containerfile")
    if "--tag" not in args:
        args = [*args, "--tag", ref]
    before = root.images_state()
    r = root.tbx("build", context, *args, "--no-tls-verify")
    assert r.rc == 1, r.text
    assert needle in r.err and "Fix:" in r.err and "Traceback" not in r.err, r.err
    assert root.images_state() == before


def test_missing_containerfile_in_context(root, ref):
    d = tempfile.mkdtemp(prefix="tbxt-build-")
    try:
        r = root.tbx("build", d, "--arch", "arm64", "--tag", ref)
        assert r.rc == 1 and "no Containerfile or Dockerfile" in r.err and "Fix:" in r.err, r.err
    finally:
        os.rmdir(d)
