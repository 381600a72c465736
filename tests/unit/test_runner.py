import pytest

from toolbx_arch import runner
from toolbx_arch.errors import TbxError


def test_timeout_is_a_tbx_error_naming_the_command():
    with pytest.raises(TbxError) as e:
        runner.run(["sleep", "5"], timeout=0.2)
    assert "did not finish within" in e.value.message and "sleep 5" in e.value.details


def test_missing_program_names_the_install_command(capsys):
    from toolbx_arch import output

    with pytest.raises(TbxError) as e:
        runner.run(["tbx-no-such-program-xyz"])
    assert "is not installed" in e.value.message and e.value.missing_tool == "tbx-no-such-program-xyz"
    output.print_error(e.value)  # where it is shown, the host's install command is added
    err = capsys.readouterr().err
    assert "Fix: " in err and "tbx-no-such-program-xyz" in err


def test_non_zero_exit_is_returned_not_raised():
    r = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
