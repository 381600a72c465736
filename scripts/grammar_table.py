"""Rewrite grammar.OPTIONS from the typer commands (after an option was added or changed in
cli.py): python scripts/grammar_table.py. tests/unit/test_entry.py checks that they agree."""


import sys
from pathlib import Path

import typer.main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolbx_arch import cli  # noqa: E402

lines = []


def walk(cmd, prefix=""):
    for name, c in sorted(cmd.commands.items()):
        if hasattr(c, "commands"):
            walk(c, f"{prefix}{name} ")
            continue
        opts = []
        for p in c.params:
            if getattr(p, "param_type_name", "") != "option":
                continue
            opts += [f'"{o}": ("{p.name}", {not p.is_flag}, {True if p.is_flag else None})' for o in p.opts]
            opts += [f'"{o}": ("{p.name}", False, False)' for o in p.secondary_opts]
        body = ",\n        ".join(opts)
        lines.append(f'    "{prefix}{name}": {{\n        {body}}},' if opts else f'    "{prefix}{name}": {{}},')


walk(typer.main.get_command(cli.app))
path = Path(cli.__file__).with_name("grammar.py")
text = path.read_text()
head = "OPTIONS: dict[str, dict[str, tuple[str, bool, bool | None]]] = {"
start = text.index(head)
end = text.index("\n}\n", start) + 3
path.write_text(text[:start] + head + "\n" + "\n".join(lines) + "\n}\n" + text[end:])
