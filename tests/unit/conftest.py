"""Unit tests read configuration from a temporary directory through XDG_CONFIG_HOME. tbx run as
root never does (``paths``: root trusts only root's files), so those tests play an ordinary user:
``as_user`` makes ``paths.is_root`` false in this process, and ``USER_CLI`` starts the CLI in a
child process the same way."""

import sys

import pytest

from toolbx_arch import paths

USER_CLI = [sys.executable, "-c",
            "import sys; from toolbx_arch import paths; paths.is_root = lambda: False; "
            "from toolbx_arch.cli import main; sys.argv[0] = 'tbx'; main()"]


@pytest.fixture
def as_user(monkeypatch):
    monkeypatch.setattr(paths, "is_root", lambda: False)
