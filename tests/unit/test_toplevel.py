"""The one top level (toplevel.run), which the fast paths and the CLI framework share."""

from __future__ import annotations

import pytest

from toolbx_arch import toplevel
from toolbx_arch.errors import TbxError


def _run(fn) -> int:
    with pytest.raises(SystemExit) as e:
        toplevel.run(fn)
    return e.value.code


def test_a_tbx_error_is_its_message_and_fix(capsys):
    def fail():
        raise TbxError("no such box", fix="tbx list", exit_code=125)

    assert _run(fail) == 125
    assert capsys.readouterr().err == "Error: no such box\nFix: tbx list\n"


def test_an_internal_error_is_one_line_asking_for_a_report_and_is_recorded_in_test_mode(tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.setenv("TBX_INTERNAL_ERRORS", str(tmp_path / "errors"))
    monkeypatch.delenv("TBX_LOG_LEVEL", raising=False)
    assert _run(lambda: 1 / 0) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: internal error: ZeroDivisionError") and "report it" in err
    assert "Traceback" in (tmp_path / "errors").read_text()


def test_an_interrupt_is_128_plus_the_signal(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert _run(interrupted) == 130
    assert capsys.readouterr().err == "tbx: interrupted\n"


def test_a_fast_path_that_breaks_is_reported_not_hidden(tmp_path, monkeypatch, capsys):
    """entry's fast paths catch only what they expect (a status file that cannot be read): any
    other exception reaches the top level as an internal error, instead of silently taking the
    slow path."""
    from toolbx_arch import entry, execspec

    def broken(argv):
        raise AttributeError("a bug in the fast path")

    monkeypatch.setenv("TBX_INTERNAL_ERRORS", str(tmp_path / "errors"))
    monkeypatch.delenv("TBX_LOG_LEVEL", raising=False)
    monkeypatch.setattr(execspec, "fast_run", broken)
    monkeypatch.setattr("sys.argv", ["tbx", "run", "-c", "box", "true"])
    assert _run(entry._main) == 1
    assert "AttributeError: a bug in the fast path" in capsys.readouterr().err
    assert "AttributeError" in (tmp_path / "errors").read_text()
