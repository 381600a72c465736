"""--json conventions: `--format json` is a synonym, and under either an error is a JSON object
on stdout with the same exit code (the human message still goes to stderr)."""

import json
import subprocess
import sys

import pytest

from toolbx_arch.grammar import normalize_json_args


@pytest.mark.parametrize("args,expect,wanted", [
    (["list", "--format", "json"], ["list", "--json"], True),
    (["list", "--format=json", "-c"], ["list", "--json", "-c"], True),
    (["check", "--arch", "aarch64", "--json"], ["check", "--arch", "aarch64", "--json"], True),
    (["image", "inspect", "--format", "json", "r/x:1"], ["image", "inspect", "--json", "r/x:1"], True),
    (["run", "--arch", "a,b", "--format", "json", "--", "tool", "--format", "json"],
     ["run", "--arch", "a,b", "--json", "--", "tool", "--format", "json"], True),
    (["run", "-c", "box", "tool", "--json"], ["run", "-c", "box", "tool", "--json"], False),
    (["run", "--arch", "--json"], ["run", "--arch", "--json"], False),  # the value of --arch
    (["create", "--json"], ["create", "--json"], False),
    (["list", "--format", "table"], ["list", "--format", "table"], False),
])
def test_format_json_is_a_synonym_among_tbx_options_only(args, expect, wanted):
    assert normalize_json_args(args) == (expect, wanted)


def tbx(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from toolbx_arch.entry import main; main()", *args],
                          capture_output=True, text=True, env=env)


@pytest.mark.parametrize("form", [["--json"], ["--format", "json"], ["--format=json"]])
@pytest.mark.parametrize("cmd", [["check", "--arch", "arm65"], ["list", "--arch", "arm65"],
                                 ["image", "inspect", "Bad//Ref"], ["build", "--arch", "arm65", "--tag", "x/y:1"]])
def test_an_error_under_json_is_a_json_object_with_the_same_exit_code(cmd, form):
    plain = tbx(*cmd)
    r = tbx(*cmd, *form)
    assert plain.returncode != 0 and r.returncode == plain.returncode, (plain, r)
    data = json.loads(r.stdout)
    assert data["schema"] == 1
    err = data["error"]
    assert err["message"] and err["exit_code"] == r.returncode and "fix" in err and "details" in err
    assert err["message"] in r.stderr  # the human form stays on stderr
    assert "Traceback" not in r.stderr


def test_a_usage_error_under_json_is_json_too():
    r = tbx("list", "--json", "--no-such-option")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["message"]


def test_without_json_stdout_stays_empty_on_error():
    r = tbx("check", "--arch", "arm65")
    assert r.returncode != 0 and r.stdout == ""
