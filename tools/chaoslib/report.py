"""The end of a run on paper: operations by kind and outcome, the faults with their
times, the verdict per key, the seed that replays the schedule; the history as JSON."""
from __future__ import annotations

import json
from collections import Counter

from .cluster import REPO_ROOT  # noqa: F401  (puts the package on sys.path)

from abcd.check import KINDS, Operation  # noqa: E402

OUTCOMES = ("ok", "fail", "unknown")
# Keys listed one by one at most; beyond that the report sums them up.
KEYS_SHOWN = 12
# Failures explained in full at most (the history file holds the rest).
EXPLAINED = 2


def operations_table(outcomes: Counter) -> list[str]:
    lines = [f"{'operation':<10}" + "".join(f"{o:>9}" for o in OUTCOMES) + f"{'total':>9}"]
    for kind in KINDS:
        row = [outcomes[kind, o] for o in OUTCOMES]
        lines.append(f"{kind:<10}" + "".join(f"{n:>9}" for n in row) + f"{sum(row):>9}")
    totals = [sum(outcomes[k, o] for k in KINDS) for o in OUTCOMES]
    lines.append(f"{'all':<10}" + "".join(f"{n:>9}" for n in totals) + f"{sum(totals):>9}")
    return lines


def faults_lines(events) -> list[str]:
    if not events:
        return ["  (none)"]
    lines = []
    for e in events:
        end = f"{e.end:6.1f}" if e.end is not None else "     ?"
        lines.append(f"  {e.start:6.1f} - {end} s  {e.detail}" + (f"  [error: {e.error}]" if e.error else ""))
    counts = Counter(e.kind for e in events)
    lines.append("  by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return lines


def verdict_lines(verdicts, final: dict, lost: list[Operation]) -> list[str]:
    lines = []
    bad = [v for v in verdicts if not v.result.ok]
    shown = verdicts if len(verdicts) <= KEYS_SHOWN else bad[:KEYS_SHOWN]
    for v in shown:
        final_text = repr(final[v.key]) if v.key in final else "final read FAILED"
        lines.append(f"  {v.key:<16} {v.word:<17} {v.operations:>6} ops, final value {final_text}")
    if len(verdicts) > len(shown):
        good = sum(1 for v in verdicts if v.result.ok)
        lines.append(f"  ... {len(verdicts)} keys: {good} linearizable, {len(bad)} not proven")
    for v in bad[:EXPLAINED]:
        lines.append("")
        lines.extend("  " + line for line in v.result.explanation.splitlines())
    lines.append(f"  acknowledged writes lost: {len(lost)}")
    for op in lost[:10]:
        lines.append(f"    {op.describe()}  [{op.invoke:.3f} .. {op.complete:.3f}]")
    missing = [v.key for v in verdicts if v.key not in final]
    if missing:
        lines.append(f"  final read failed for {len(missing)} key(s): {', '.join(missing[:5])}")
    return lines


def history_document(operations: tuple[Operation, ...], events, seed: int, argv: list[str]) -> dict:
    """The history (times in seconds since the run began) and the faults, as JSON."""
    def t(x):
        return None if x is None else round(x, 6)

    return {
        "seed": seed,
        "command": argv,
        "faults": [e.as_dict() for e in events],
        "operations": [
            {"client": op.client, "kind": op.kind, "key": op.key, "value": op.value, "expected": op.expected,
             "output": op.output, "invoke": t(op.invoke), "complete": t(op.complete)}
            for op in operations
        ],
    }


def load_history(path: str) -> list[Operation]:
    """The operations of a history file, ready for `abcd.check.check` again."""
    with open(path) as f:
        document = json.load(f)
    return [Operation(**op) for op in document["operations"]]
