"""The status channel and the host binds, on fixture directories (issue 20)."""

import os
import threading

import pytest

from toolbx_arch import config, hostspec, status
from toolbx_arch.errors import TbxError


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "runtime_dir", lambda: str(tmp_path))
    return tmp_path


def test_prepare_makes_private_parents_and_a_0755_status_dir(rt):
    p, made = status.prepare("box")
    assert made and p == f"{rt}/tbx/containers/box"
    assert oct(os.stat(rt / "tbx").st_mode & 0o777) == "0o700"
    assert oct(os.stat(rt / "tbx" / "containers").st_mode & 0o777) == "0o700"
    assert oct(os.stat(p).st_mode & 0o777) == "0o755"
    assert status.prepare("box") == (p, False)


def test_prepare_never_follows_a_planted_link(rt, tmp_path_factory):
    target = tmp_path_factory.mktemp("target")
    os.chmod(target, 0o700)
    (rt / "tbx" / "containers").mkdir(parents=True)
    os.symlink(target, rt / "tbx" / "containers" / "box")
    with pytest.raises(status.StatusError, match="symbolic link is refused"):
        status.prepare("box")
    assert oct(os.stat(target).st_mode & 0o777) == "0o700"
    os.rename(rt / "tbx", rt / "old")
    os.symlink(target, rt / "tbx")
    with pytest.raises(status.StatusError):
        status.prepare("box")
    assert oct(os.stat(target).st_mode & 0o777) == "0o700" and os.listdir(target) == []


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b"])
def test_prepare_refuses_non_names(rt, bad):
    with pytest.raises(status.StatusError):
        status.prepare(bad)


def test_read_small_reads_only_a_few_printable_bytes_of_a_regular_file(rt, tmp_path_factory):
    d = rt / "tbx" / "containers" / "box"
    d.mkdir(parents=True)
    secret = tmp_path_factory.mktemp("s") / "secret"
    secret.write_text("SECRET\n")
    os.symlink(secret, d / "failed")
    assert status.read_small("box", "failed") is None
    os.unlink(d / "failed")
    os.mkfifo(d / "failed")
    t = threading.Timer(5, lambda: os.unlink(d / "failed"))  # a hang would outlive this
    t.start()
    assert status.read_small("box", "failed") is None
    t.cancel()
    os.unlink(d / "failed")
    (d / "failed").write_bytes(b"why\x1b[31m" + b"x" * 10_000)
    text, _ = status.read_small("box", "failed")
    assert text.startswith("why?[31m") and len(text) <= status.MAX_READ
    assert status.read_small("box", "missing") is None


def test_ready_is_the_lock_not_the_file(rt):
    import fcntl

    d = rt / "tbx" / "containers" / "box"
    d.mkdir(parents=True)
    assert status.is_ready("box") is False
    (d / "ready").write_text("flock\n")
    assert status.is_ready("box") is False  # nobody holds the lock
    fd = os.open(d / "ready", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    pid = os.fork()
    if pid == 0:  # another process: the lock is held by "the init"
        os._exit(0 if status.is_ready("box") is True else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    os.close(fd)
    os.unlink(d / "ready")
    os.symlink("/etc/hostname", d / "ready")
    assert status.is_ready("box") is False
    assert status.is_ready("box", unlocked_ok=True) is False


def test_a_plain_ready_file_counts_only_when_podman_said_it_runs(rt):
    """An init that could not use flock writes a plain file: the fast paths (which ask podman
    nothing) do not take it; ensure_running, which asked podman, does."""
    d = rt / "tbx" / "containers" / "box"
    d.mkdir(parents=True)
    (d / "ready").write_text("1\n")
    assert status.is_ready("box") is False
    assert status.is_ready("box", unlocked_ok=True) is True


def test_remove_deletes_entries_not_what_links_point_to(rt, tmp_path_factory):
    keep = tmp_path_factory.mktemp("k") / "keep"
    keep.write_text("x")
    d = rt / "tbx" / "containers" / "box"
    d.mkdir(parents=True)
    os.symlink(keep, d / "failed")
    status.remove("box")
    assert not d.exists() and keep.read_text() == "x"


def test_binds_are_top_level_directories_without_mounts_below(tmp_path):
    assert hostspec.bind_sources(["/usr/bin", "/usr/bin/sh"], ["/", "/proc", "/opt/a"]) == ["/usr"]
    assert hostspec.bind_sources(["/usr/bin", "/usr/bin/sh"], ["/", "/usr/lib/special"]) == ["/usr/bin"]
    got = hostspec.bind_sources(["/usr/lib/x86_64-linux-gnu", "/usr/bin"], ["/", "/usr/share/z"])
    assert got == ["/usr/bin", "/usr/lib"]
    with pytest.raises(TbxError):
        hostspec.bind_sources([str(tmp_path)], ["/", str(tmp_path / "m")])


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "not-utf8", "huge", "dir"])
def test_config_reads_only_small_regular_utf8_files(tmp_path, kind):
    p = tmp_path / "config.toml"
    if kind == "dev-zero":
        p.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "not-utf8":
        p.write_bytes(b"a = '\xff'\n")
    elif kind == "huge":
        p.write_text("#" * (config.MAX_BYTES + 1))
    else:
        p.mkdir()
    with pytest.raises(TbxError) as e:
        config.read_text(p)
    assert str(p) in e.value.message and e.value.fix


def test_config_deep_nesting_is_one_error(tmp_path, monkeypatch, as_user):
    p = tmp_path / "tbx" / "config.toml"
    p.parent.mkdir()
    p.write_text("a = " + "[" * 100_000)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(TbxError, match="is not valid TOML"):
        config.load()


def test_a_config_link_to_a_regular_file_is_fine(tmp_path):
    real = tmp_path / "real.toml"
    real.write_text('default_arch = "aarch64"\n')
    (tmp_path / "config.toml").symlink_to(real)
    assert config.read_text(tmp_path / "config.toml") == 'default_arch = "aarch64"\n'
