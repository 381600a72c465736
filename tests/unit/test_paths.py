"""paths: root's directories and the trust rule (issue 27)."""

import os

import pytest

from toolbx_arch import paths


def test_root_never_takes_directories_from_the_environment(monkeypatch):
    monkeypatch.setattr(paths, "is_root", lambda: True)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/u/.config")
    monkeypatch.setenv("XDG_DATA_HOME", "/home/u/.local/share")
    monkeypatch.setenv("HOME", "/home/u")
    home = paths.home()
    assert not home.startswith("/home/u")
    assert paths.config_home() == os.path.join(home, ".config")
    assert paths.user_config() == os.path.join(home, ".config", "tbx", "config.toml")
    assert paths.data_dir() == "/var/lib/tbx"


def test_a_user_takes_absolute_xdg_directories(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "is_root", lambda: False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.config_home() == str(tmp_path / "c")
    assert paths.data_dir() == str(tmp_path / ".local" / "share" / "tbx")


def test_root_environment_drops_what_another_user_passed_on(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "is_root", lambda: True)
    writable = tmp_path / "bin"
    writable.mkdir()
    writable.chmod(0o777)
    env = {"XDG_CONFIG_HOME": "/home/u/.config", "XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u",
           "PATH": f"{writable}:/usr/bin:relative:/no/such/dir", "LANG": "C"}
    paths.root_environment(env)
    assert env == {"HOME": paths.home(), "PATH": "/usr/bin", "LANG": "C"}
    monkeypatch.setattr(paths, "is_root", lambda: False)
    env = {"XDG_CONFIG_HOME": "/x", "PATH": str(writable)}
    paths.root_environment(env)
    assert env == {"XDG_CONFIG_HOME": "/x", "PATH": str(writable)}


@pytest.fixture
def tree(tmp_path):
    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    f = d / "f"
    f.write_text("x")
    f.chmod(0o644)
    return d, f


def test_trusted_when_every_directory_is_owned_and_closed(tree):
    d, f = tree
    assert paths.untrusted(str(f)) is None
    assert paths.untrusted(str(d / "missing")) is None  # the caller decides what a missing file means


@pytest.mark.parametrize("what,mode,why", [("dir", 0o775, "writable by its group"),
                                           ("dir", 0o757, "writable by others"),
                                           ("file", 0o666, "writable by group and others")])
def test_writable_by_others_is_refused(tree, what, mode, why):
    d, f = tree
    (d if what == "dir" else f).chmod(mode)
    reason = paths.untrusted(str(f))
    assert reason and why in reason and str(d if what == "dir" else f) in reason


def test_owned_by_someone_else_is_refused(tree):
    d, f = tree
    os.chown(d, 4242, 4242)
    assert "is owned by uid 4242" in paths.untrusted(str(f))
    assert "chown" in paths.trust_fix(str(f), paths.untrusted(str(f)))


def test_a_sticky_root_directory_above_is_fine_but_not_the_file_itself(tmp_path):
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    inner = sticky / "emu"
    inner.mkdir(mode=0o755)
    (inner / "q").write_text("x")
    assert paths.untrusted(str(inner / "q")) is None
    assert "writable by group and others" in paths.untrusted(str(sticky))


def test_a_link_is_judged_by_where_it_points_too(tree, tmp_path):
    d, f = tree
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "g").write_text("x")
    os.chown(bad, 4242, 4242)
    link = d / "link"
    link.symlink_to(bad / "g")
    assert "is owned by uid 4242" in paths.untrusted(str(link))
    link2 = d / "link2"
    link2.symlink_to(f)
    assert paths.untrusted(str(link2)) is None


def test_require_trusted_is_one_error_with_the_fix(tree):
    from toolbx_arch.errors import TbxError

    d, f = tree
    d.chmod(0o777)
    with pytest.raises(TbxError) as e:
        paths.require_trusted(str(f), "the configuration file")
    assert str(f) in e.value.message and "writable by group and others" in e.value.message
    assert e.value.fix.startswith(f"chmod go-w {d}")


def test_only_the_paths_module_names_the_xdg_variables():
    """One place for directories: no other module reads or spells an XDG_* variable (issue 30)."""
    from pathlib import Path

    pkg = Path(__file__).resolve().parents[2] / "toolbx_arch"
    spelled = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if "XDG_" in p.read_text())
    assert spelled == ["paths.py"]
