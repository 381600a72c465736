"""Completion in real shells under a pty: bash, zsh (autoloaded from $fpath, as packages install
it) and fish complete a tbx container's name on the *first* Tab, with the scripts
`tbx completion SHELL` prints. The container is a real podman container with tbx's label."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from tests.conftest import need

from .conftest import TBX

pexpect = pytest.importorskip("pexpect")


@pytest.fixture
def box(root):
    """A tbx-labelled container with a unique name; its prefix completes to it alone."""
    n = f"tbxt-compl{uuid.uuid4().hex[:6]}"
    img = subprocess.run(["podman", "images", "-q"], capture_output=True, text=True).stdout.split()
    need(bool(img), "no local image to make a container from")
    r = subprocess.run(["podman", "create", "--name", n, "--label", "io.github.tbx.managed=true",
                        "--label", "io.github.tbx.arch=x86_64", img[0], "true"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    yield n
    subprocess.run(["podman", "rm", "-f", n], capture_output=True)


def _script(tmp_path, shell: str) -> str:
    r = subprocess.run([TBX, "completion", shell], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    return r.stdout


def _first_tab(argv: list[str], setup: list[str], prefix: str, full: str, env: dict,
               ready: str = "echo READY-$((6*7))") -> None:
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=20, dimensions=(40, 200))
    try:
        for line in setup:
            child.sendline(line)
        child.sendline(ready)  # the echo of the typed line cannot match: only the output does
        child.expect("READY-42")
        child.send(f"tbx enter {prefix}\t")
        child.expect_exact(full[len(prefix):])  # the rest of the name, typed by the first Tab
    finally:
        child.sendcontrol("c")
        child.close(force=True)


def _env(tmp_path) -> dict:
    tbx_dir = os.path.dirname(TBX)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": f"{tbx_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TERM": "xterm",
            "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"), "LANG": "C.UTF-8"}


def test_bash_completes_a_container_name_on_the_first_tab(root, box, tmp_path):
    need(shutil.which("bash") is not None, "bash is not installed")
    f = tmp_path / "tbx.bash"
    f.write_text(_script(tmp_path, "bash"))
    _first_tab(["bash", "--norc", "--noprofile", "-i"], [f"source {f}"], box[:-4], box, _env(tmp_path))


def test_zsh_completes_a_container_name_on_the_first_tab_when_autoloaded(root, box, tmp_path):
    need(shutil.which("zsh") is not None, "zsh is not installed (scripts/provision-test-host.sh installs it)")
    d = tmp_path / "site-functions"
    d.mkdir()
    (d / "_tbx").write_text(_script(tmp_path, "zsh"))
    setup = [f"fpath=({d} $fpath)", "autoload -Uz compinit", "compinit -u -D"]
    _first_tab(["zsh", "-f", "-i"], setup, box[:-4], box, _env(tmp_path))


def test_fish_completes_a_container_name_on_the_first_tab(root, box, tmp_path):
    need(shutil.which("fish") is not None, "fish is not installed (scripts/provision-test-host.sh installs it)")
    f = tmp_path / "tbx.fish"
    f.write_text(_script(tmp_path, "fish"))
    _first_tab(["fish", "--no-config", "-i"], [f"source {f}"], box[:-4], box, _env(tmp_path),
               ready="echo READY-(math 6 '*' 7)")


def test_completion_of_an_unknown_shell_is_refused():
    r = subprocess.run([TBX, "completion", "tcsh"], capture_output=True, text=True)
    assert r.returncode == 1 and "bash, zsh, fish" in r.stderr and r.stdout == ""
