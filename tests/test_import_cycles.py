"""No import cycles in abcd/: a module's imports form a tree a reader can follow down.

Every import counts, those under `if TYPE_CHECKING:` and inside functions too: a cycle
hidden from the interpreter is still two modules that cannot be read one without the
other.  `from . import sub` is an import of the submodule, not of the package's
`__init__`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import abcd

ROOT = Path(abcd.__file__).parent



def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    for name, path in found.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                subs = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in found]
                deps.update(subs)
                if len(subs) < len(node.names):
                    deps.add(module)
        # A module's own packages are imported before it anyway: no edge.
        graph[name] = {d for d in deps if d in found and d != name and not name.startswith(d + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return found


def test_the_detector_finds_a_cycle_hidden_under_type_checking(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import A\n")
    (package / "a.py").write_text("from . import b\nclass A: ...\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n")
    (package / "c.py").write_text("from . import a\n")
    assert cycles(import_graph(modules(package))) == [{"pkg.a", "pkg.b"}]


def test_abcd_has_no_import_cycle():
    assert cycles(import_graph(modules(ROOT))) == []


def test_the_key_value_store_and_the_snapshots_are_in_no_cycle():
    found = cycles(import_graph(modules(ROOT)))
    involved = set().union(*found) if found else set()
    assert {m for m in involved if m.startswith("abcd.kv") or m.startswith("abcd.node.snapshot")} == set()


def test_the_node_and_the_parts_it_hands_itself_to_do_not_import_each_other():
    # cluster_ops and removal take the part of a node they use (a Protocol), not the node.
    graph = import_graph(modules(ROOT))
    assert "abcd.node.cluster_ops" in graph["abcd.node.node"]
    assert "abcd.node.node" not in graph["abcd.node.cluster_ops"]
    assert "abcd.node.node" not in graph["abcd.node.removal"]
