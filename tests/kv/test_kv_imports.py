"""abcd/kv is the state machine: it imports the standard library and itself only."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import abcd.kv

PACKAGE = Path(abcd.kv.__file__).parent


def test_kv_imports_only_the_standard_library():
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
