"""Option conventions of podman, checked over the whole command tree: -a is --all wherever it
exists, --arch has no short form and --platform goes with it, every option has a metavar or is a
flag, --log-level is a choice."""

import typer.main

from toolbx_arch.cli import app


def _commands():
    root = typer.main.get_command(app)
    todo = [("tbx", root)]
    while todo:
        path, cmd = todo.pop()
        if hasattr(cmd, "commands"):
            todo += [(f"{path} {n}", c) for n, c in cmd.commands.items()]
        yield path, cmd


def _options(cmd):
    return [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]


def test_dash_a_is_all_everywhere_and_arch_has_no_short_form():
    with_a = []
    for path, cmd in _commands():
        for p in _options(cmd):
            if "-a" in p.opts:
                assert "--all" in p.opts, f"{path}: -a is {p.opts}"
                with_a.append(path)
            if "--arch" in p.opts:
                assert [o for o in p.opts + p.secondary_opts if not o.startswith("--")] == [], f"{path}: {p.opts}"
                assert "--platform" in p.opts, f"{path}: --arch without --platform"
    assert {"tbx list", "tbx rm", "tbx rmi"} <= set(with_a)


def test_every_command_that_takes_an_arch_takes_a_platform():
    takes = {path for path, cmd in _commands() for p in _options(cmd) if "--arch" in p.opts}
    assert takes == {"tbx check", "tbx create", "tbx enter", "tbx run", "tbx build", "tbx list",
                     "tbx image inspect", "tbx image pull"}


def test_every_value_option_has_a_metavar():
    for path, cmd in _commands():
        for p in _options(cmd):
            if not p.is_flag and p.name not in ("help",):
                assert p.metavar, f"{path} {p.opts}: no metavar"


def test_log_level_is_a_choice():
    root = typer.main.get_command(app)
    (opt,) = [p for p in root.params if "--log-level" in getattr(p, "opts", ())]
    assert list(opt.type.choices) == ["debug", "info", "warning", "error"]
