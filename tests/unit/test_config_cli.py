import subprocess
import sys

import pytest

from toolbx_arch import config, paths
from toolbx_arch.errors import TbxError

from .conftest import USER_CLI


def write(tmp_path, monkeypatch, text):
    monkeypatch.setattr(paths, "is_root", lambda: False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "none.toml")
    (tmp_path / "tbx").mkdir(exist_ok=True)
    (tmp_path / "tbx" / "config.toml").write_text(text)


def test_config_values(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch, 'default_arch = "arm64"\ndefault_image = "r.example.org/x:1"\n'
          'emulator_paths = ["/opt/q"]\n[images]\n"debian:12" = "r.example.org/deb:12"\n'
          '"fedora" = "r.example.org/fed:{release}"\n')
    c = config.load()
    assert c.default_arch == "arm64" and c.default_image == "r.example.org/x:1"
    assert c.emulator_paths == ("/opt/q",)
    assert c.image_for("debian", "12") == "r.example.org/deb:12"
    assert c.image_for("fedora", "44") == "r.example.org/fed:44"
    assert c.image_for("ubuntu", "24.04") is None


@pytest.mark.parametrize("text,key", [
    ("default_arch = 'arm65'\n", "default_arch"),
    ("emulator_paths = 'x'\n", "emulator_paths"),
    ("emulator_paths = ['relative']\n", "emulator_paths"),
    ("[images]\ndebian = 12\n", "images.debian"),
    ("default_image = \n", ""),
])
def test_bad_config_names_file_and_key(tmp_path, monkeypatch, text, key):
    write(tmp_path, monkeypatch, text)
    with pytest.raises(TbxError) as e:
        config.load()
    assert str(tmp_path / "tbx" / "config.toml") in e.value.message
    if key:
        assert key in (e.value.details or "") + e.value.message


def test_unknown_key_warns_by_name_and_the_rest_still_applies(tmp_path, monkeypatch, capsys):
    write(tmp_path, monkeypatch, 'from_a_newer_tbx = 1\ndefault_arch = "arm64"\n')
    c = config.load()
    assert c.default_arch == "arm64"
    err = capsys.readouterr().err
    assert "'from_a_newer_tbx'" in err and "ignored" in err and str(tmp_path / "tbx" / "config.toml") in err


def test_wrong_type_of_a_known_key_stays_an_error(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch, "default_arch = 64\n")
    with pytest.raises(TbxError):
        config.load()


@pytest.mark.parametrize("value", ["relative/dir", "", "./x"])
def test_relative_xdg_config_home_is_ignored(monkeypatch, tmp_path, value, as_user):
    monkeypatch.setenv("XDG_CONFIG_HOME", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.user_file() == tmp_path / ".config" / "tbx" / "config.toml"


def test_unknown_key_does_not_block_a_command(tmp_path):
    (tmp_path / "tbx").mkdir()
    (tmp_path / "tbx" / "config.toml").write_text("some_future_key = true\n")
    r = subprocess.run([*USER_CLI, "check", "--arch", "x86_64", "--json"],
                       capture_output=True, text=True, env={"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert "some_future_key" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout.lstrip().startswith("{"), r.stdout


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "toolbx_arch.cli", *args], capture_output=True, text=True)


def test_help_lists_every_command():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("check", "create", "enter", "run", "list", "rm", "rmi", "image"):
        assert f"  {cmd} " in r.stdout
    assert "config.toml" in r.stdout
    r = run_cli("image", "--help")
    assert "inspect" in r.stdout and "pull" in r.stdout
    assert run_cli("--version").stdout.startswith("tbx version ")


def test_unknown_arch_is_a_clean_error():
    r = run_cli("create", "--arch", "arm65", "x")
    assert r.returncode == 1
    assert "architecture 'arm65' is not supported" in r.stderr
    assert "aarch64 (arm64)" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_exit_1_without_traceback():
    r = run_cli("create", "--no-such-flag")
    assert r.returncode == 1 and "No such option" in r.stderr and "Traceback" not in r.stderr


def test_bad_config_is_a_clean_cli_error(tmp_path):
    (tmp_path / "tbx").mkdir()
    (tmp_path / "tbx" / "config.toml").write_text("default_arch = [\n")
    r = subprocess.run([*USER_CLI, "check", "--arch", "x86_64"],
                       capture_output=True, text=True, env={"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "config.toml" in r.stderr and "not valid TOML" in r.stderr


def test_log_level_validation():
    r = run_cli("--log-level", "loud", "check")
    assert r.returncode == 1 and "debug" in r.stderr
