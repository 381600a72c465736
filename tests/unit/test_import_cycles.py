"""No import cycles among toolbx_arch's modules, read with ast: none among module-level imports
(which would break at import time), and none either when the lazy imports inside functions are
counted, so that the layers run one way (commands -> engines/host -> runner -> model)."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "toolbx_arch"


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph(lazy: bool = False) -> dict[str, set[str]]:
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        tree = ast.parse(path.read_text())
        for node in (ast.walk(tree) if lazy else tree.body):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                deps.add(base)
                deps |= {f"{base}.{a.name}" for a in node.names}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def test_graph_is_read():
    g = _graph()
    assert "toolbx_arch.errors" in g["toolbx_arch.config"]
    assert "toolbx_arch.naming" in g["toolbx_arch.resolve"]


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "with-lazy-imports"])
def test_no_import_cycles(lazy):
    g = _graph(lazy)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(g[n]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(g):
        if n not in state:
            visit(n)


def test_pure_modules_read_nothing_of_the_host():
    """resolve and runner get host facts passed in (os-release, install commands)."""
    g = _graph(lazy=True)
    assert "toolbx_arch.hostinfo" not in g["toolbx_arch.resolve"]
    assert "toolbx_arch.hostinfo" not in g["toolbx_arch.runner"]
    assert "toolbx_arch.execspec" not in g["toolbx_arch.runner"]


def test_every_module_says_its_job():
    for path in PKG.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.split()) >= 4, f"{path.relative_to(PKG)} has no docstring naming its job"
