"""What `podman exec` gets: the user, the directory and the environment."""

from __future__ import annotations

from toolbx_arch import execspec


def test_exec_argv_runs_as_the_user_in_the_current_directory_inside_home(tmp_path, monkeypatch):
    user = execspec.User("alice", 1000, 1000, "alice", str(tmp_path), "/bin/bash")
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("SECRET_TOKEN", "x")
    argv = execspec.exec_argv("box", ["make"], user=user, interactive=True, tty=False)
    assert argv[:3] == ["podman", "exec", "--interactive"] and "--tty" not in argv
    assert argv[argv.index("--user") + 1] == "alice"
    assert argv[argv.index("--workdir") + 1] == str(tmp_path / "src")
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "--env"]
    assert "LANG=C.UTF-8" in envs and not any(e.startswith("SECRET_TOKEN") for e in envs)
    assert argv[-2:] == ["box", "make"]
    monkeypatch.chdir("/")
    argv = execspec.exec_argv("box", ["make"], user=user, interactive=False, tty=False)
    assert argv[argv.index("--workdir") + 1] == str(tmp_path)  # outside the home: the home
