"""Issue 30: one grammar. The command lines where the fast paths and the CLI framework used to
disagree now behave as the framework does, root options first or not."""

from __future__ import annotations

import json

import pytest

NODE = ["--connection", "aarch64=nonode", "--arch", "aarch64"]


@pytest.mark.parametrize("root_opts", [[], ["--log-level", "warning"]], ids=["plain", "root-option-first"])
def test_the_five_command_lines_behave_as_the_framework_says(rootless, root_opts):
    r = rootless.tbx(*root_opts, "run", *NODE, "-j", "\u00b2", "true")
    assert r.rc == 1 and "Invalid value for '--jobs'" in r.err and "Traceback" not in r.err, r.text
    for json_opts in (["--format", "json"], ["--json"]):
        r = rootless.tbx(*root_opts, "run", *NODE, *json_opts, "true")
        assert r.rc == 1, r.text
        err = json.loads(r.out)["error"]
        assert "no podman connection named 'nonode'" in err["message"] and err["fix"], r.out
    r = rootless.tbx(*root_opts, "list", "--format", "json", "-c")
    assert r.rc == 0 and "containers" in json.loads(r.out), r.text
    r = rootless.tbx(*root_opts, "create", "-rv-x", "--arch", "aarch64")
    assert r.rc == 1 and "'-rv-x' would be read as option -r with the value 'v-x'" in r.err, r.text


def test_usage_messages_name_the_command(rootless):
    r = rootless.tbx("list", "--nope")
    assert r.rc == 1 and "see 'tbx list --help'" in r.err, r.text
    r = rootless.tbx("rm")
    assert r.rc == 1 and r.err.startswith("Error: tbx rm needs the name of a container"), r.text
    r = rootless.tbx("--log-level", "debug", "list", "--json")
    assert r.rc == 0 and "tbx: DEBUG: run:" in r.err and "containers" in json.loads(r.out), r.text
