"""One grammar (issues 29 and 30): the fast paths of ``entry`` parse ``run``, ``enter``, ``list``,
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

from toolbx_arch import cli, entry, execspec, grammar, runner, status
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
        bundled = grammar.refuse_bundled_values([sub, *argv])
        if bundled:
            raise TbxError(*bundled[:1], fix=bundled[1])
        cmd(args=[sub, *argv], prog_name="tbx", standalone_mode=False)
    except (Exit, SystemExit):
        pass
    except (TyperException, TbxError):
        return None
    finally:
        monkeypatch.setattr(module, fn_name, real)
    return got.get("call")


def _normalized(sub: str, argv: list[str]) -> list[str]:
    """What both paths see: entry rewrites --format json first (grammar.normalize_json_args)."""
    if "--json" in argv or "--format" in argv or "--format=json" in argv:
        argv = grammar.normalize_json_args([sub, *argv])[0][1:]
    return argv


def _count(sub: str) -> None:
    SEEN[sub] = SEEN.get(sub, 0) + 1


common = settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@common
@given(argv=_line("create"))
def test_create_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("create")
    argv = _normalized("create", argv)
    fast = entry._create_args(argv)
    if fast is None:
        return
    mine = _bound(create_mod.create, (), dict(distro=None, release=None, authfile=None, tls_verify=None, **fast))
    assert framework_call(monkeypatch, "create", create_mod, "create", argv) == mine, argv


@common
@given(argv=_line("rm"))
def test_rm_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("rm")
    argv = _normalized("rm", argv)
    fast = entry._rm_args(argv)
    if fast is None:
        return
    mine = _bound(rm_mod.rm, (fast[0],), dict(force=fast[1], all_=False))
    assert framework_call(monkeypatch, "rm", rm_mod, "rm", argv) == mine, argv


@common
@given(argv=_line("list"))
def test_list_fast_path_makes_the_frameworks_call(monkeypatch, argv):
    _count("list")
    argv = _normalized("list", argv)
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
    argv = _normalized("run", argv)
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
    argv = _normalized("enter", argv)
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


def _clis_table() -> dict:
    import typer.main

    table = {}

    def walk(cmd, prefix=""):
        for name, c in cmd.commands.items():
            if hasattr(c, "commands"):
                walk(c, f"{prefix}{name} ")
                continue
            opts = {}
            for p in c.params:
                if getattr(p, "param_type_name", "") != "option":
                    continue
                for o in p.opts:
                    opts[o] = (p.name, not p.is_flag, True if p.is_flag else None)
                for o in p.secondary_opts:
                    opts[o] = (p.name, False, False)
            table[f"{prefix}{name}"] = opts

    walk(typer.main.get_command(cli.app))
    return table


def test_the_grammar_table_is_the_clis_own():
    """grammar.OPTIONS, which the fast paths, --format json and the bundled-value check read,
    is exactly what the typer commands define: an option added, renamed or turned into a flag
    in cli.py fails here until grammar.py says the same."""
    assert grammar.OPTIONS == _clis_table(), "regenerate it: python scripts/grammar_table.py"
    import typer.main

    group = typer.main.get_command(cli.app)
    assert grammar.ROOT_OPTIONS == {o: not p.is_flag for p in group.params for o in p.opts}
    assert {n for n, c in group.commands.items() if not c.context_settings.get("allow_interspersed_args", True)} \
        == grammar.COMMAND_FOLLOWS
    assert set(grammar.LOG_LEVELS) == set(group.params[0].type.choices)


@pytest.mark.parametrize("command", sorted(grammar.FAST))
def test_every_option_of_a_fast_command_is_read_by_its_fast_path_or_left_to_the_cli(command):
    """A new option of run, enter, list, rm or create fails here until its fast path reads it or
    says it leaves it to the CLI (grammar.FAST / grammar.LEFT_TO_CLI)."""
    read, left = grammar.FAST[command], grammar.LEFT_TO_CLI[command]
    assert not read & left
    assert read | left == set(grammar.OPTIONS[command]), set(grammar.OPTIONS[command]) ^ (read | left)


@pytest.mark.parametrize("args, root, rest, level", [
    (["--log-level", "debug", "list", "-c"], ["--log-level", "debug"], ["list", "-c"], "debug"),
    (["--log-level=INFO", "run", "--arch", "x", "true"], ["--log-level=INFO"], ["run", "--arch", "x", "true"], "info"),
    (["--log-level", "nope", "list"], ["--log-level", "nope"], ["list"], None),
    (["--version"], [], ["--version"], "warning"),
    (["--log-level"], [], ["--log-level"], "warning"),
    (["list", "--log-level", "debug"], [], ["list", "--log-level", "debug"], "warning"),
])
def test_root_options_come_before_the_command(args, root, rest, level):
    assert grammar.split_root(args) == (root, rest)
    assert grammar.log_level(root) == level


@pytest.mark.parametrize("args, expect", [
    (["--log-level", "debug", "list", "--format", "json", "-c"], ["--log-level", "debug", "list", "--json", "-c"]),
    (["run", "--connection", "aarch64=n", "--arch", "aarch64", "--format", "json", "true"],
     ["run", "--connection", "aarch64=n", "--arch", "aarch64", "--json", "true"]),
    (["run", "--arch", "aarch64", "sh", "--format", "json"], ["run", "--arch", "aarch64", "sh", "--format", "json"]),
    (["image", "inspect", "--arch", "--format", "x"], ["image", "inspect", "--arch", "--format", "x"]),
])
def test_format_json_is_read_with_the_commands_own_options(args, expect):
    assert grammar.normalize_json_args(args)[0] == expect


def test_a_glued_value_is_refused_with_root_options_first_too():
    for args in (["create", "-rv-x", "--arch", "aarch64"], ["--log-level", "debug", "create", "-rv-x"]):
        assert "would be read as option -r" in grammar.refuse_bundled_values(args)[0]
    assert grammar.refuse_bundled_values(["run", "--arch", "x", "ls", "-rv-x"]) is None
    assert grammar.refuse_bundled_values(["run", "-j2", "--arch", "x", "ls"]) is None


@pytest.mark.parametrize("argv,expected", [
    (["--arch", "x86_64", "--connection", "x86_64=n", "--", "uname", "-m"],
     (["uname", "-m"], {"arch": "x86_64", "connections": ["x86_64=n"]})),
    (["--arch=x86_64,aarch64", "--connection=x86_64=n", "--image", "r/x:1", "--no-sync", "--fallback-local",
      "--create", "--no-tls-verify", "-j", "2", "--json", "true"],
     (["true"], {"arch": "x86_64,aarch64", "connections": ["x86_64=n"], "image": "r/x:1", "sync": False,
                 "fallback_local": True, "create_missing": True, "tls_verify": False, "jobs": 2, "json_out": True})),
    (["--arch", "x86_64", "--local", "sh", "-c", "echo --json"],
     (["sh", "-c", "echo --json"], {"arch": "x86_64", "local": True})),
])
def test_remote_run_shapes_are_parsed_without_the_cli(argv, expected):
    command, kw = entry._run_args(argv)
    assert command == expected[0]
    for k, v in expected[1].items():
        assert kw[k] == v, k


@pytest.mark.parametrize("argv", [
    ["--connection", "x86_64=n", "true"],                  # no --arch: the CLI explains
    ["--arch", "x86_64", "--connection", "x86_64=n"],     # no command
    ["--arch", "x86_64", "-c", "box", "true"],            # a container: the CLI's shape
    ["--arch", "x86_64", "--help"],
    ["--arch", "x86_64", "--jobs", "0", "true"],
    ["--arch", "x86_64", "--arch", "aarch64", "true"],
])
def test_other_run_shapes_go_to_the_cli(argv):
    assert entry._run_args(argv) is None


# --- the fast run path ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv,applies", [
    (["-c", "box", "uname", "-m"], True),
    (["--container=box", "true"], True),
    (["--container", "box", "true"], True),
    (["-c", "", "true"], False),
    (["-c", "-x", "true"], False),
    (["-c", "a/b", "true"], False),
    (["-c", "box"], False),
    (["-c", "box", "--arch", "arm64", "true"], False),
    (["--arch", "arm64", "true"], False),  # no container of that arch in the catalog
    (["--arch", "s390x", "true"], True),   # exactly one
    (["--arch=s390x", "true"], True),
    (["--arch", "aarch64,s390x", "true"], False),
])
def test_fast_run_applies_only_to_its_exact_shape(argv, applies, monkeypatch):
    seen = []
    monkeypatch.setattr(status, "catalog", lambda: {"box": "s390x"})  # not this host's real catalog
    monkeypatch.setattr(status, "is_ready", lambda name: True)
    monkeypatch.setattr(runner, "execvp", lambda a, env=None: seen.append(a))
    execspec.fast_run(argv)
    assert bool(seen) == applies
    if applies:
        assert seen[0][:2] == ["podman", "exec"] and "box" in seen[0]


def test_fast_run_does_nothing_for_a_container_that_is_not_ready(monkeypatch):
    seen = []
    monkeypatch.setattr(status, "is_ready", lambda name: False)
    monkeypatch.setattr(runner, "execvp", lambda a, env=None: seen.append(a))
    execspec.fast_run(["-c", "box", "true"])
    assert seen == []
