import pytest

from toolbx_arch import runner
from toolbx_arch.errors import TbxError


def test_timeout_is_a_tbx_error_naming_the_command():
    with pytest.raises(TbxError) as e:
        runner.run(["sleep", "5"], timeout=0.2)
    assert "did not finish within" in e.value.message and "sleep 5" in e.value.details


def test_missing_program_names_the_install_command():
    with pytest.raises(TbxError) as e:
        runner.run(["tbx-no-such-program-xyz"])
    assert "is not installed" in e.value.message and e.value.fix


def test_non_zero_exit_is_returned_not_raised():
    r = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
