"""The Raft core is a pure reducer: it imports only a few standard-library modules,
never names a clock, a file, a socket, a thread or an event loop, and draws
randomness only from the RNG it was seeded with (style.md: "the core imports the
standard library only").  Checked on the source with `ast`, so a violation is
caught even on a code path no test runs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import abcd.raft

RAFT_DIR = Path(abcd.raft.__file__).parent
MODULES = sorted(RAFT_DIR.glob("*.py"))

# Pure, deterministic modules only.  `operator` is in the same class as functools
# and itertools (the log uses itemgetter for speed), `array` a container like
# collections' (the log keeps its terms in one).
ALLOWED_IMPORTS = frozenset(
    {
        "__future__",
        "array",
        "bisect",
        "collections",
        "dataclasses",
        "enum",
        "functools",
        "heapq",
        "itertools",
        "json",
        "operator",
        "random",
        "typing",
    }
)
# Names that mean time, I/O, concurrency or hidden state, whether imported or not.
FORBIDDEN_NAMES = frozenset(
    {"time", "os", "sys", "socket", "asyncio", "threading", "datetime", "io", "open", "print", "input", "__import__"}
)
# `random` is allowed only to build a seeded generator: random.random() and friends
# would use the process-wide RNG and break determinism.
ALLOWED_RANDOM_ATTRIBUTES = frozenset({"Random"})


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every way `source` breaks the purity rules, as 'file:line: what' strings."""
    found = []

    def bad(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_IMPORTS:
                    bad(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module not in ALLOWED_IMPORTS:
                bad(node, f"imports from {node.module}")
            elif node.level > 1:
                bad(node, f"imports from outside the raft package ({'.' * node.level}{node.module or ''})")
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES:
                    bad(node, f"imports the name {alias.name}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            bad(node, f"names {node.id}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "random":
            if node.attr not in ALLOWED_RANDOM_ATTRIBUTES:
                bad(node, f"uses the global RNG (random.{node.attr})")
    return found


def test_the_raft_package_has_modules():
    names = {p.name for p in MODULES}
    assert {"core.py", "election.py", "replication.py", "log.py", "messages.py", "effects.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_core_module_is_pure(path: Path):
    assert violations(path.read_text(), path.name) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import os\n", "<source>:1: imports os"),
        ("import socket as s\n", "<source>:1: imports socket"),
        ("from time import monotonic\n", "<source>:1: imports from time"),
        ("from asyncio import sleep\n", "<source>:1: imports from asyncio"),
        ("import abcd.net.codec\n", "<source>:1: imports abcd.net.codec"),
        ("from ..storage import wal\n", "<source>:1: imports from outside the raft package (..storage)"),
        ("from .log import open\n", "<source>:1: imports the name open"),
        ("x = 1\nf = open('wal')\n", "<source>:2: names open"),
        ("stamp = datetime.now()\n", "<source>:1: names datetime"),
        ("def f(): threading.Thread()\n", "<source>:1: names threading"),
        ("print('hello')\n", "<source>:1: names print"),
        ("import random\nx = random.random()\n", "<source>:2: uses the global RNG (random.random)"),
    ],
)
def test_purity_check_catches_forbidden_source(source, expected):
    """The check itself can fail: each forbidden construct is reported where it is."""
    assert expected in violations(source)


def test_purity_check_accepts_allowed_source():
    source = (
        "from __future__ import annotations\n"
        "import random\n"
        "from collections import deque\n"
        "from .messages import Entry\n"
        "rng = random.Random(7)\n"
        "self_open_read_round = 0  # an attribute or variable may contain the word\n"
    )
    assert violations(source) == []
