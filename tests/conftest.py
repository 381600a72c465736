"""Suite-wide rules.

- Under CI=true a missing prerequisite of a system test is a failure, never a skip
  (``need()``); locally it skips with the reason.
- The host's /proc/sys/fs/binfmt_misc is recorded when the session starts and compared when it
  ends: any difference fails the run (tests and tbx must never write it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolbx_arch import binfmt

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_SNAPSHOT: dict[str, str] = {}


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a test prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_sessionstart(session: pytest.Session) -> None:
    _SNAPSHOT.update(binfmt.snapshot(binfmt.PROC_BINFMT))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
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
