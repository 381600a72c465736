"""tbx installs as a normal Python package for people who bring their own podman, skopeo and
qemu: `pip install .` in a fresh venv and `pipx install .` both give a working `tbx`, and the
wheel carries the Apache-2.0 licence in its metadata (PEP 639)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]


def _ok(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, (argv, r.stdout[-2000:], r.stderr[-2000:])
    return r


def test_pip_install_in_a_fresh_venv_and_the_wheel_has_the_licence(tmp_path):
    venv = tmp_path / "venv"
    _ok([sys.executable, "-m", "venv", str(venv)])
    _ok([str(venv / "bin" / "pip"), "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)])
    wheel = next((tmp_path / "dist").glob("toolbx_arch-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
        assert "License-Expression: Apache-2.0" in text and "License-File: LICENSE" in text
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in z.namelist())
        assert any(n.endswith("share/man/man1/tbx.1") for n in z.namelist())
    _ok([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)])
    assert _ok([str(venv / "bin" / "tbx"), "--version"]).stdout.startswith("tbx version ")
    assert "Commands:" in _ok([str(venv / "bin" / "tbx"), "--help"]).stdout


def test_pipx_install(tmp_path):
    need(shutil.which("pipx") is not None, "pipx is not installed (scripts/provision-test-host.sh installs it)")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "PIPX_HOME": str(tmp_path / "pipx"),
           "PIPX_BIN_DIR": str(tmp_path / "bin"), "PIPX_MAN_DIR": str(tmp_path / "man")}
    _ok(["pipx", "install", str(ROOT)], env=env)
    assert _ok([str(tmp_path / "bin" / "tbx"), "--version"], env=env).stdout.startswith("tbx version ")
