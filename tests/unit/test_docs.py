"""Completions and man pages are generated from the CLI; the committed files must not drift."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolbx_arch import docs

ROOT = Path(__file__).resolve().parents[2]


def test_committed_completions_and_man_pages_match_the_cli():
    generated = docs.generate()
    assert {"completions/tbx.bash", "completions/tbx.zsh", "completions/tbx.fish", "man/tbx.1",
            "man/tbx-create.1", "man/tbx-enter.1", "man/tbx-run.1", "man/tbx-check.1", "man/tbx-list.1",
            "man/tbx-rm.1", "man/tbx-rmi.1", "man/tbx-image-inspect.1", "man/tbx-image-pull.1"} <= set(generated)
    stale = [rel for rel, text in generated.items()
             if not (ROOT / rel).is_file() or (ROOT / rel).read_text() != text]
    assert not stale, f"regenerate with: python -m toolbx_arch.docs .  (stale: {stale})"
    extra = {str(p.relative_to(ROOT)) for p in (ROOT / "man").glob("*.1")} - set(generated)
    assert not extra, f"man pages no command generates: {extra}"


def _complete(words: list[str], cword: int) -> list[str]:
    tbx_dir = str(Path(sys.executable).parent)
    script = (f"source {ROOT}/completions/tbx.bash; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
              f"COMP_CWORD={cword}; _tbx_completion tbx; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    env = {**os.environ, "PATH": f"{tbx_dir}:{os.environ.get('PATH', '')}"}
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if l]


def test_bash_completes_subcommands_options_and_arches():
    assert _complete(["tbx", "cre"], 1) == ["create"]
    assert set(_complete(["tbx", "r"], 1)) == {"rm", "rmi", "run"}
    assert _complete(["tbx", "create", "--arch", "aa"], 3) == ["aarch64"]
    assert "riscv64" in _complete(["tbx", "check", "--arch", ""], 3)
    assert "--arch" in _complete(["tbx", "enter", "--"], 2)
    assert _complete(["tbx", "image", "p"], 2) == ["pull"]


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_pages_render():
    for page in (ROOT / "man").glob("*.1"):
        r = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                           env={**os.environ, "MANWIDTH": "80"})
        assert r.returncode == 0, (page, r.stderr)
        assert "EXIT STATUS" in r.stdout and "SEE ALSO" in r.stdout
        assert not r.stderr.strip(), (page, r.stderr)
    out = subprocess.run(["man", "-l", str(ROOT / "man/tbx.1")], capture_output=True, text=True).stdout
    assert "CONFIGURATION" in out and "tbx create" in out and "EXAMPLES" in out


def test_man_pages_have_environment_files_and_argument_help_and_tbx1_does_not_cite_itself():
    generated = docs.generate()
    for rel, text in generated.items():
        if rel.startswith("man/"):
            assert ".SH ENVIRONMENT" in text and ".SH FILES" in text and "TBX_LOG_LEVEL" in text, rel
            assert "\n\\&\n" not in text, f"{rel}: an option or argument without help text"
    see_also = generated["man/tbx.1"].split(".SH SEE ALSO", 1)[1]
    assert "tbx(1)" not in see_also
    create = generated["man/tbx-create.1"]
    assert "[OPTIONS] [NAME]" in create and "Container name" in create


def test_completion_command_prints_the_packaged_scripts():
    for shell, fname in docs.SHELLS.items():
        r = subprocess.run([sys.executable, "-m", "toolbx_arch.cli", "completion", shell], capture_output=True,
                           text=True)
        assert r.returncode == 0 and r.stdout == (ROOT / "completions" / fname).read_text(), shell
    r = subprocess.run([sys.executable, "-m", "toolbx_arch.cli", "--help"], capture_output=True, text=True)
    assert "--install-completion" not in r.stdout and "completion" in r.stdout
    assert "..." not in r.stdout.split("Commands:", 1)[1], "a command summary is cut off"
