"""One grammar (issue 29, item 9): the fast paths of ``entry`` parse ``run``, ``enter``, ``list``,
``rm`` and ``create`` by hand, beside the CLI framework. For generated command lines, whenever a
fast path accepts one, the CLI framework accepts it too and makes the same call with the same
arguments (a fast path may always decline: the framework then handles the line). No input gives a
fast path a traceback.

"The call" is the command function each side calls (commands.X), with every argument bound and
defaults applied; the framework's side is recorded by replacing that function, so nothing runs.
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolbx_arch import cli, entry, execspec, output
from toolbx_arch.commands import create as create_mod
from toolbx_arch.commands import enter as enter_mod
from toolbx_arch.commands import list as list_mod
from toolbx_arch.commands import rm as rm_mod
from toolbx_arch.commands import run as run_mod
from toolbx_arch.errors import TbxError

EXAMPLES = 500          # per command: 2,500 command lines in all
SEEN: dict[str, int] = {}

VALUES = ["aarch64", "arm64", "linux/arm64", "x86_64", "s390x,aarch64", "arm65", "", "-x", "box", "reg/x:1",
          "2", "0", "\u00b2", "-1", "a=b", "aarch64=node", "auto", "identity", "cortex-a57", "json", "/srv:/data:ro"]
WORDS = ["box", "true", "uname", "-m", "--", "sh", "-c", "echo hi", "-", "--nope", "-Z", "-rv-x", "-fy", "-fa"]


def _tokens(sub: str) -> list[str]:
    """Every option string of the framework's command, with values glued on too, and words."""
    import typer.main

    cmd = typer.main.get_command(cli.app).commands[sub]
    opts = [o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ())) if o.startswith("-")]
    return opts + [f"{o}={v}" for o in opts if o.startswith("--") for v in ("aarch64", "", "2", "x")] + VALUES + WORDS


def _options(sub: str) -> list[tuple[str, bool]]:
    """(option string, takes a value) of the framework's command."""
    import typer.main

    cmd = typer.main.get_command(cli.app).commands[sub]
    return [(o, not p.is_flag) for p in cmd.params if getattr(p, "param_type_name", "") == "option"
            for o in (*p.opts, *getattr(p, "secondary_opts", ()))]


# The options each fast path knows, drawn more often than the rest (which make it decline).
FAST = {"create": ["--arch", "--platform", "--image", "-i", "--userns", "--cpu", "-y", "--assumeyes"],
        "run": ["--arch", "--platform", "--image", "-i", "--jobs", "-j", "--connection", "--tls-verify",
                "--no-tls-verify", "--sync", "--no-sync", "--local", "--fallback-local", "--create", "--json",
                "-c", "--container"],
        "list": ["--json", "-c", "-i", "-a", "--arch", "--containers", "--images", "--all"],
        "rm": ["-f", "--force"], "enter": ["--arch", "--platform"]}


@st.composite
def _shaped(draw, sub: str) -> list[str]:
    """A line shaped like real use: options with values (separate or glued with '='), a name or a
    command where the command takes one, now and then a stray token anywhere."""
    line: list[str] = []
    known = [o for o in _options(sub) if o[0] in FAST[sub]]
    picks = st.one_of(st.sampled_from(known), st.sampled_from(known), st.sampled_from(_options(sub)))
    good = st.one_of(st.sampled_from(["aarch64", "arm64", "x86_64", "box", "2", "auto", "reg/x:1", "aarch64=node"]),
                     st.sampled_from(VALUES))
    first = [draw(st.sampled_from([o for o in known if o[0] in ("--arch", "-c", "--container")]))] \
        if sub in ("create", "run") and draw(st.booleans()) else []
    for opt, takes in first + draw(st.lists(picks, max_size=4)):
        if takes:
            value = draw(good)
            line += [f"{opt}={value}"] if opt.startswith("--") and draw(st.booleans()) else [opt, value]
        else:
            line.append(opt)
    if sub in ("create", "enter", "rm") and draw(st.booleans()):
        line.insert(draw(st.integers(0, len(line))), draw(st.sampled_from(["box", "tbx-1", "-box"])))
    if sub == "run":
        line += (["--"] if draw(st.booleans()) else []) + draw(st.lists(st.sampled_from(["true", "uname", "-m",
                                                                                          "sh", "-c", "--"]),
                                                                         min_size=1, max_size=3))
    if draw(st.integers(0, 4)) == 0:
        line.insert(draw(st.integers(0, len(line))), draw(st.sampled_from(WORDS + VALUES)))
    return line


def _line(sub: str):
    return st.one_of(_shaped(sub), _shaped(sub), st.lists(st.sampled_from(_tokens(sub)), max_size=7))


def _bound(fn, args, kwargs) -> dict:
    b = inspect.signature(fn).bind(*args, **kwargs)
    b.apply_defaults()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in b.arguments.items()}


class _Called(Exception):
    pass


def framework_call(monkeypatch, sub: str, module, fn_name: str, argv: list[str]):
    """The framework's call for ``tbx SUB ARGV``: the bound arguments of commands.SUB's function,
    or None when it refuses the line (a usage error, or tbx's own refusal before the call)."""
    import typer.main
    from typer import Exit
    from typer.exceptions import TyperException

    real = getattr(module, fn_name)
    got = {}

    def record(*args, **kwargs):
        got["call"] = _bound(real, args, kwargs)
        return 0

    monkeypatch.setattr(module, fn_name, record)
    try:
        cmd = typer.main.get_command(cli.app)
        cli._refuse_bundled_values(cmd, [sub, *argv])
        cmd(args=[sub, *argv], prog_name="tbx", standalone_mode=False)
    except (Exit, SystemExit):
        pass
    except (TyperException, TbxError):
        return None
    finally:
        monkeypatch.setattr(module, fn_name, real)
    return got.get("call")


def _normalized(argv: list[str]) -> list[str]:
    """What both paths see: entry rewrites --format json first (output.normalize_json_args)."""
    if "--json" in argv or "--format" in argv or "--format=json" in argv:
        argv, _ = output.normalize_json_args(argv)
    return argv


def _count(sub: str) -> None:
    SEEN[sub] = SEEN.get(sub, 0) + 1


common = settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@common
@given(argv=_line("create"))
def test_create_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("create")
    argv = _normalized(argv)
    fast = entry._create_args(argv)
    if fast is None:
        return
    mine = _bound(create_mod.create, (), dict(distro=None, release=None, authfile=None, tls_verify=None, **fast))
    assert framework_call(monkeypatch, "create", create_mod, "create", argv) == mine, argv


@common
@given(argv=_line("rm"))
def test_rm_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("rm")
    argv = _normalized(argv)
    fast = entry._rm_args(argv)
    if fast is None:
        return
    mine = _bound(rm_mod.rm, (fast[0],), dict(force=fast[1], all_=False))
    assert framework_call(monkeypatch, "rm", rm_mod, "rm", argv) == mine, argv


@common
@given(argv=_line("list"))
def test_list_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("list")
    argv = _normalized(argv)
    real = list_mod.list_
    got = {}

    def record(*args, **kwargs):
        got["call"] = _bound(real, args, kwargs)
        return 0

    monkeypatch.setattr(list_mod, "list_", record)
    try:
        rc = list_mod.fast(argv)
    finally:
        monkeypatch.setattr(list_mod, "list_", real)
    if rc is None:
        return
    assert framework_call(monkeypatch, "list", list_mod, "list_", argv) == got["call"], argv


@common
@given(argv=_line("run"))
def test_run_fast_paths_make_the_frameworks_call(monkeypatch, argv):
    _count("run")
    argv = _normalized(argv)
    theirs = None
    parsed = entry._run_args(argv)  # the remote-capable plain path
    if parsed is not None:
        mine = _bound(run_mod.run, (parsed[0],), parsed[1])
        theirs = framework_call(monkeypatch, "run", run_mod, "run", argv)
        assert theirs == mine, argv
    shape = execspec.run_shape(argv)  # podman exec on a ready container
    if shape is not None:
        container, arch, command = shape
        theirs = theirs or framework_call(monkeypatch, "run", run_mod, "run", argv)
        mine = _bound(run_mod.run, (command,), dict(container=container, arch=arch, image=None, distro=None,
                                                    release=None, create_missing=False, jobs=None, json_out=False))
        assert theirs == mine, argv


@common
@given(argv=_line("enter"))
def test_enter_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("enter")
    argv = _normalized(argv)
    shape = execspec.enter_shape(argv)
    if shape is None:
        return
    mine = _bound(enter_mod.enter, (), dict(name=shape[0], arch=shape[1], distro=None, release=None))
    assert framework_call(monkeypatch, "enter", enter_mod, "enter", argv) == mine, argv


def test_at_least_2000_command_lines_were_compared():
    assert sum(SEEN.values()) >= 2000 and set(SEEN) == {"create", "rm", "list", "run", "enter"}, SEEN


@pytest.mark.parametrize("argv", [
    ["--connection", "aarch64=nonode", "--arch", "aarch64", "-j", "\u00b2", "true"],
    ["--arch", "aarch64", "--jobs=\u00b2", "true"],
])
def test_a_non_ascii_digit_is_declined_not_a_traceback(argv):
    assert entry._run_args(argv) is None
