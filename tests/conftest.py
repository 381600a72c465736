"""Suite-wide rules.

- Under CI=true a missing prerequisite of a system test is a failure, never a skip
  (``need()``); locally it skips with the reason.
- The host's /proc/sys/fs/binfmt_misc, its /etc and a few kernel settings are recorded when the
  session starts and compared when it ends: any difference fails the run (tests and tbx must
  never write them; nothing inside a container can).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolbx_arch import binfmt

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_SNAPSHOT: dict[str, str] = {}
_HOST: dict[str, str] = {}
HOST_FILES = ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/sys/kernel/mm/ksm/run")


def host_snapshot() -> dict[str, str]:
    """Every entry under /etc (type, mode, owner, content digest or link target) and HOST_FILES."""
    import hashlib

    out: dict[str, str] = {}
    for top, dirs, files in os.walk("/etc"):
        dirs.sort()
        for n in dirs + files:
            p = os.path.join(top, n)
            try:
                st = os.lstat(p)
                if os.path.islink(p):
                    what = "-> " + os.readlink(p)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        what = hashlib.sha256(f.read()).hexdigest()
                else:
                    what = "dir" if os.path.isdir(p) else "other"
            except OSError as e:
                what = f"unreadable {e.errno}"
                st = None
            out[p] = f"{what} {oct(st.st_mode) if st else ''} {st.st_uid if st else ''}:{st.st_gid if st else ''}"
    for p in HOST_FILES:
        try:
            with open(p) as f:
                out[p] = f.read()
        except OSError:
            pass
    return out


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a test prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_sessionstart(session: pytest.Session) -> None:
    _SNAPSHOT.update(binfmt.snapshot(binfmt.PROC_BINFMT))
    _HOST.update(host_snapshot())
    # Test mode of toplevel: every internal error of a tbx the tests run is written here.
    import tempfile

    fd, path = tempfile.mkstemp(prefix="tbx-internal-errors.")
    os.fchmod(fd, 0o666)  # tbx runs as the test user too
    os.close(fd)
    os.environ["TBX_INTERNAL_ERRORS"] = path


def _internal_errors(session: pytest.Session, reporter) -> None:
    """An unexpected exception anywhere in tbx fails the suite, even where a test accepted its exit."""
    path = os.environ.get("TBX_INTERNAL_ERRORS")
    if not path or not os.path.exists(path):
        return
    text = Path(path).read_text()
    os.unlink(path)
    if text:
        if reporter:
            reporter.write_line("tbx raised internal errors during the test session:\n" + text[-4000:], red=True,
                                bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    _internal_errors(session, reporter)
    host_after = host_snapshot()
    if host_after != _HOST:
        changed = sorted(k for k in set(host_after) | set(_HOST) if host_after.get(k) != _HOST.get(k))
        if reporter:
            reporter.write_line(f"host files CHANGED during the test session: {', '.join(changed[:20])}", red=True,
                                bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.write_line(f"host /etc and kernel settings unchanged ({len(_HOST)} entries compared)")
    after = binfmt.snapshot(binfmt.PROC_BINFMT)
    if after != _SNAPSHOT:
        changed = sorted(k for k in set(after) | set(_SNAPSHOT) if after.get(k) != _SNAPSHOT.get(k))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = f"host /proc/sys/fs/binfmt_misc CHANGED during the test session: {', '.join(changed)}"
        if reporter:
            reporter.write_line(msg, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif _SNAPSHOT:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"host /proc/sys/fs/binfmt_misc unchanged ({len(_SNAPSHOT)} files compared)")


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"
