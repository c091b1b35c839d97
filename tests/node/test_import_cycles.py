"""No two modules of abcd/ import each other, directly or around a loop.

An import cycle means neither module can be read (or tested) without the other.
Imports under `if TYPE_CHECKING:` count too: they say the module needs the other's
type, which is the same coupling; a module that needs only part of another says so
with a Protocol (node/cluster_ops.py, node/removal.py).  Checked on the source with
`ast`, so a cycle is caught even in a module no test imports.
"""
from __future__ import annotations

import ast
from pathlib import Path

import abcd

ROOT = Path(abcd.__file__).parent

# Cycles known today, each to be cut by its own change (the KV store and its snapshot
# capture; the Raft core's mixins and the state they share).  Any other cycle fails.
KNOWN = [
    frozenset({"abcd.kv.snapshot", "abcd.kv.store"}),
    frozenset({
        "abcd.raft.core", "abcd.raft.state", "abcd.raft.election", "abcd.raft.replication",
        "abcd.raft.membership", "abcd.raft.snapshot", "abcd.raft.reads",
    }),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of `modules` that `source` (the module `module`) imports."""
    found = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` imports the module x when there is one.
            targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(paths)
    return {m: imports_of(p.read_text(), m, p.name == "__init__.py", modules) for m, p in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_abcd_has_no_import_cycle_but_the_known_ones():
    graph = import_graph(ROOT)
    assert "abcd.node.node" in graph and "abcd.node.router" in graph["abcd.node.node"]
    new = [sorted(c) for c in cycles(graph) if c not in KNOWN]
    assert new == [], f"import cycles: {new}"


def test_the_node_and_cluster_ops_do_not_import_each_other():
    graph = import_graph(ROOT)
    assert "abcd.node.cluster_ops" in graph["abcd.node.node"]
    assert "abcd.node.node" not in graph["abcd.node.cluster_ops"]
    assert "abcd.node.node" not in graph["abcd.node.removal"]


def test_the_check_finds_a_cycle_through_a_type_checking_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("from .c import thing\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import Thing\n"
    )
    (package / "d.py").write_text("from pkg import a\n")
    assert cycles(import_graph(package)) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]
