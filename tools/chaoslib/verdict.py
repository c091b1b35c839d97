"""What the history says: linearizable or not, key by key, and no acknowledged write lost.

Each key is checked alone with `abcd.check.check` (keys are independent registers).
The final reads, made after every fault was healed and every member restarted, are in
the history, so a write the cluster acknowledged and then forgot makes the final read
of its key impossible to place: the checker reports it.

The lost-write count says the same in plainer terms, for the report: an acknowledged
write is lost when the final read of its key shows something else although no other
write to that key (acknowledged or of unknown outcome) could have come after it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .cluster import REPO_ROOT  # noqa: F401  (puts the package on sys.path)

from abcd.check import DEFAULT_BUDGET, CheckResult, Operation, check  # noqa: E402

_WRITES = ("put", "delete", "cas")


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    key: str
    operations: int
    result: CheckResult

    @property
    def word(self) -> str:
        if self.result.ok:
            return "linearizable"
        return "inconclusive" if self.result.inconclusive else "NOT linearizable"


def verdicts(operations: tuple[Operation, ...], budget: int = DEFAULT_BUDGET) -> list[KeyVerdict]:
    by_key: dict[str, list[Operation]] = {}
    for op in operations:
        by_key.setdefault(op.key, []).append(op)
    return [KeyVerdict(key, len(ops), check(ops, budget=budget)) for key, ops in sorted(by_key.items())]


def _effect(op: Operation):
    """The value an acknowledged write leaves (None: absent), or a marker for a no-op."""
    if op.kind == "delete":
        return None
    return op.value


def lost_writes(operations: tuple[Operation, ...], final: dict[str, str | None]) -> list[Operation]:
    """Acknowledged writes that the final reads contradict with nothing to explain it."""
    lost = []
    by_key: dict[str, list[Operation]] = {}
    for op in operations:
        if op.kind in _WRITES and op.client != "final":
            by_key.setdefault(op.key, []).append(op)
    for key, writes in by_key.items():
        if key not in final:
            continue  # its final read failed; the report says so
        for w in writes:
            took_effect = not w.unknown and (w.kind != "cas" or w.output is True)
            if not took_effect or _effect(w) == final[key]:
                continue
            # Could anything have overwritten it?  Only a write that might take effect
            # after w did: one not finished before w began (unknown ones never finish).
            later = [o for o in writes if o is not w and (o.unknown or o.complete >= w.invoke)
                     and not (o.kind == "cas" and o.output is False)]
            if not later:
                lost.append(w)
    return lost
