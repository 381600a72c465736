"""System-test fixtures: the provisioned host (scripts/provision-test-host.sh), tbx run as a real
process (as root, and as the unprivileged test user for rootless), and cleanup of what tests made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import need

pytestmark = pytest.mark.system

ENV_FILE = Path(os.environ.get("TBX_TEST_ENV", "/run/tbx-ci/env"))
TBX = os.environ.get("TBX_BIN") or str(Path(sys.executable).parent / "tbx")
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/system" in str(item.fspath):
            item.add_marker(pytest.mark.system)


@dataclass
class Host:
    env: dict

    def __getitem__(self, k: str) -> str:
        return self.env[k]

    @property
    def index_ref(self) -> str:
        return self.env["TBX_TEST_INDEX_REF"]

    @property
    def single_ref(self) -> str:
        return self.env["TBX_TEST_SINGLE_REF"]

    @property
    def auth_ref(self) -> str:
        return self.env["TBX_TEST_AUTH_REF"]

    @property
    def user(self) -> str:
        return self.env["TBX_TEST_USER"]

    @property
    def uid(self) -> int:
        return int(self.env["TBX_TEST_UID"])


@pytest.fixture(scope="session")
def host() -> Host:
    need(os.geteuid() == 0, "system tests run as root (they also act as the rootless test user)")
    need(ENV_FILE.is_file(), f"{ENV_FILE} missing: run scripts/provision-test-host.sh")
    for tool in ("podman", "skopeo", "qemu-aarch64-static", "runuser"):
        need(shutil.which(tool) is not None, f"{tool} is not installed")
    need(os.path.exists(TBX), f"tbx is not installed at {TBX}")
    env = {}
    for line in ENV_FILE.read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep:
            env[k] = v
    h = Host(env)
    r = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{h.index_ref}"],
                       capture_output=True, text=True)
    need(r.returncode == 0, f"the test registry does not answer for {h.index_ref}: {r.stderr.strip()}")
    return h


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def _run(argv: list[str], *, input: str | None = None, env: dict | None = None, timeout: int = 300,
         cwd: str | None = None) -> Result:
    r = subprocess.run(argv, input=input, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return Result(r.returncode, r.stdout, r.stderr)


class Runner:
    """Runs tbx (and podman) as root or as the rootless test user, with a clean environment."""

    def __init__(self, host: Host, rootless: bool) -> None:
        self.host = host
        self.rootless = rootless
        if rootless:
            self.home = f"/home/{host.user}"
            self.env = {"HOME": self.home, "USER": host.user, "LOGNAME": host.user, "PATH": CLEAN_PATH,
                        "XDG_RUNTIME_DIR": f"/run/user/{host.uid}", "LANG": "C.UTF-8"}
        else:
            self.home = "/root"
            self.env = {"HOME": "/root", "USER": "root", "LOGNAME": "root", "PATH": CLEAN_PATH, "LANG": "C.UTF-8"}
        if os.environ.get("TBX_INTERNAL_ERRORS"):  # toplevel's test mode (tests/conftest.py)
            self.env["TBX_INTERNAL_ERRORS"] = os.environ["TBX_INTERNAL_ERRORS"]

    def argv(self, argv: list[str], extra_env: dict | None = None) -> list[str]:
        if self.rootless:
            env = {**self.env, **(extra_env or {})}
            return ["runuser", "-u", self.host.user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]
        return argv

    def tbx(self, *args: str, input: str | None = None, timeout: int = 300, env: dict | None = None,
            cwd: str | None = None) -> Result:
        return _run(self.argv([TBX, *args], env), input=input,
                    env=None if self.rootless else {**self.env, **(env or {})}, timeout=timeout, cwd=cwd or self.home)

    def podman(self, *args: str, timeout: int = 300) -> Result:
        return _run(self.argv(["podman", *args]), env=None if self.rootless else self.env, timeout=timeout,
                    cwd=self.home)

    def image_id(self, name: str) -> str | None:
        r = self.podman("image", "inspect", "--format", "{{.Id}}", name)
        return r.out.strip() if r.rc == 0 else None

    def images_state(self) -> list[tuple[str, str]]:
        """(id, name) pairs of every local image: compare before/after."""
        r = self.podman("images", "--format", "json")
        assert r.rc == 0, r.err
        out = []
        for img in json.loads(r.out or "[]"):
            for n in img.get("Names") or ["<none>"]:
                out.append((img["Id"], n))
        return sorted(out)

    def containers(self) -> list[str]:
        r = self.podman("ps", "-a", "--format", "{{.Names}}")
        assert r.rc == 0, r.err
        return r.out.split()

    def rm_containers(self, *names: str) -> None:
        existing = set(self.containers())
        for n in names:
            if n in existing:
                for _ in range(3):
                    if self.podman("rm", "-f", "-t", "0", n).rc == 0:
                        break


@pytest.fixture(scope="session")
def root(host) -> Runner:
    return Runner(host, rootless=False)


@pytest.fixture(scope="session")
def rootless(host) -> Runner:
    need(Path(f"/run/user/{host.uid}").is_dir(), "the test user's XDG_RUNTIME_DIR is missing")
    return Runner(host, rootless=True)


@pytest.fixture(params=["root", "rootless"])
def who(request, host) -> Runner:
    return Runner(host, rootless=request.param == "rootless")


@pytest.fixture
def name() -> str:
    return f"tbxt-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cleanup(host):
    """Register (runner, container name) pairs; removed after the test whatever happened."""
    made: list[tuple[Runner, str]] = []
    yield lambda runner, *names: made.extend((runner, n) for n in names)
    for runner, n in made:
        runner.rm_containers(n)


@pytest.fixture(scope="session", autouse=True)
def _clean_test_leftovers(request):
    """Containers from earlier runs of this suite (named tbxt-*, or made from the test registry)."""
    def sweep():
        if not ENV_FILE.is_file() or os.geteuid() != 0:
            return
        h = Host({k: v for k, _, v in (l.partition("=") for l in ENV_FILE.read_text().splitlines())})
        for rl in (False, True):
            r = Runner(h, rootless=rl)
            try:
                rows = json.loads(r.podman("ps", "-a", "--format", "json").out or "[]")
            except (ValueError, subprocess.SubprocessError, KeyError):
                continue
            for row in rows:
                n = (row.get("Names") or [""])[0]
                src = (row.get("Labels") or {}).get("io.github.tbx.source", "")
                # (not provisioning's tbxref-*: scripts/hello-reference.sh removes its own)
                if n.startswith("tbxt-") or ("/tbx-test/" in src and not n.startswith("tbxref-")):
                    r.rm_containers(n)
            # images the build tests made and then untagged (built on the test images, whose
            # label is their own): nothing else is dangling with that label
            r.podman("image", "prune", "-f", "--filter", "label=org.opencontainers.image.title=tbx test image")
    sweep()
    yield
    sweep()


@pytest.fixture
def root_config():
    """Root's own configuration file (root never reads XDG_CONFIG_HOME: issue 27), as a Path to
    write; whatever was there before is put back afterwards."""
    import pwd

    cfg = Path(pwd.getpwuid(0).pw_dir) / ".config" / "tbx" / "config.toml"
    made = [p for p in (cfg.parent.parent, cfg.parent) if not p.exists()]
    cfg.parent.mkdir(parents=True, exist_ok=True)
    saved = cfg.read_bytes() if cfg.exists() or cfg.is_symlink() else None
    yield cfg
    if cfg.is_symlink() or cfg.exists():
        cfg.unlink()
    if saved is not None:
        cfg.write_bytes(saved)
    for p in reversed(made):
        shutil.rmtree(p, ignore_errors=True)
