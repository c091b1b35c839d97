"""Linearizability of key-value histories.

Theory of operation
-------------------
A history is linearizable if each operation can be given one instant inside its
interval [invoke, complete] such that, taken in the order of those instants, the
operations are what a sequential register would have answered.  Keys are independent
registers, and linearizability is compositional (Herlihy & Wing, "locality"), so each
key's sub-history is checked alone: that keeps the search small.

Per key, the search is the one of Wing & Gong as improved by Lowe ("Testing for
Linearizability", 2017), the algorithm Porcupine also uses:

- Every operation contributes a call event at `invoke` and a return event at
  `complete`; the events are sorted by time into a doubly linked list.  At equal times
  calls come first, so operations whose intervals only touch are treated as concurrent
  (a precedes b only if a.complete < b.invoke).  That errs towards accepting: with a
  coarse clock, equal timestamps say nothing about order.
- Walking the list from the front, a call event is an operation that may be linearized
  now.  If the register model accepts it in the current state, it is "lifted" (its call
  and return are unlinked), pushed on a stack, and the walk restarts from the front.
- Reaching a return event means that operation's deadline has come while it is still
  not linearized: the current prefix cannot be extended, so the last lifted operation
  is put back and the walk continues after it (backtracking).
- Lowe's memoization: the pair (set of linearized operations as a bitmask, register
  value) determines the whole future of the search, so a pair seen before is skipped.
- Read-only operations (a get, a failed cas) are linearized greedily: if one fits the
  current value it may as well take effect now, so no alternative order is tried for
  it.  Without this, many concurrent reads of the same value make a failing search
  enumerate every subset of them.

Unknown outcomes: an operation whose outcome is unknown gets complete = +infinity.  It
may be linearized at any point after its call, or never.  "Never" is free: all its
return events sort after every definite return, so reaching one means every definite
operation is linearized and the history is accepted, whatever unknown operations are
left.  An unknown get changes nothing and constrains nothing, so it is dropped.

The search is exponential in the worst case; `budget` bounds the number of search steps
(attempts to linearize one operation in one state) for the whole check.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from abcd.check.history import Operation

DEFAULT_BUDGET = 1_000_000
# At most this many operations are listed in a failure explanation.
WINDOW_LIMIT = 20

# Compiled operation kinds: the model step is a branch on these in the inner loop.
_PUT, _GET, _DELETE, _CAS_OK, _CAS_FAILED = range(5)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict.  `ok` is True only if the history was proven linearizable.

    An inconclusive check (search budget exceeded) has ok=False and inconclusive=True:
    not proven either way.  On a violation `key` names the register and `window` holds
    the operations around the point where no linearization could go further.
    """

    ok: bool
    key: str | None
    explanation: str
    inconclusive: bool = False
    window: tuple[Operation, ...] = ()
    steps: int = 0


class _Budget:
    """Search steps left, shared by the keys of one check."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


@dataclass(frozen=True, slots=True)
class _Stuck:
    """The deepest point of a failed search: `op` could not be linearized before its
    return, after the `depth` operations in `linearized` had been, leaving `state`."""

    op: int
    depth: int
    linearized: int
    state: str | None


def check(
    operations: Iterable[Operation],
    *,
    budget: int = DEFAULT_BUDGET,
    initial: Mapping[str, str] | None = None,
) -> CheckResult:
    """Decide whether `operations` is a linearizable history of a key-value store.

    Every key starts absent unless `initial` gives its value.  `budget` bounds the
    search steps over all keys; smaller keys are checked first so that a cheap
    violation is found even when a large key would exhaust the budget.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    initial = dict(initial or {})
    for key, value in initial.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"initial must map str keys to str values, got {key!r}: {value!r}")
    by_key: dict[str, list[Operation]] = defaultdict(list)
    count = 0
    for i, op in enumerate(operations):
        if not isinstance(op, Operation):
            raise TypeError(f"history item {i} is not an Operation: {op!r}")
        count += 1
        if op.kind == "get" and op.unknown:
            continue  # no effect, no constraint
        by_key[op.key].append(op)

    remaining = _Budget(budget)
    inconclusive: CheckResult | None = None
    for key in sorted(by_key, key=lambda k: (len(by_key[k]), k)):
        result = _check_key(key, by_key[key], initial.get(key), remaining, budget)
        if result.inconclusive:
            inconclusive = inconclusive or result
        elif not result.ok:
            return replace(result, steps=budget - remaining.left)
    steps = budget - remaining.left
    if inconclusive is not None:
        return CheckResult(
            False, inconclusive.key, inconclusive.explanation, inconclusive=True, steps=steps
        )
    return CheckResult(
        True,
        None,
        f"linearizable: {count} operation(s) on {len(by_key)} key(s)",
        steps=steps,
    )


def _compile(op: Operation) -> tuple[int, str | None, str | None]:
    """(kind code, a, b) for the model step; see _search."""
    if op.kind == "put":
        return _PUT, op.value, None
    if op.kind == "get":
        return _GET, op.output, None
    if op.kind == "delete":
        return _DELETE, None, None
    if op.unknown:
        # Model it as a success: had it run and failed it would have changed nothing,
        # which "never linearized" already covers.
        return _CAS_OK, op.expected, op.value
    return (_CAS_OK if op.output else _CAS_FAILED), op.expected, op.value


def _check_key(
    key: str, ops: list[Operation], initial: str | None, budget: _Budget, total: int
) -> CheckResult:
    outcome = _search(ops, initial, budget)
    if outcome is None:
        return CheckResult(True, key, f"key {key!r} is linearizable")
    if outcome == "budget":
        return CheckResult(
            False,
            key,
            f"inconclusive: search budget exceeded ({total} steps) on key {key!r} "
            f"({len(ops)} operations)",
            inconclusive=True,
        )
    window = _window(ops, outcome)
    return CheckResult(
        False,
        key,
        _explain(key, ops, initial, outcome, window),
        window=tuple(ops[i] for i in window),
    )


def _search(ops: list[Operation], initial: str | None, budget: _Budget) -> _Stuck | str | None:
    """Lowe's search on one key: None if linearizable, "budget" if out of steps, else
    the deepest point reached."""
    n = len(ops)
    steps = [_compile(op) for op in ops]
    inf = float("inf")
    # Event e = 2*i is the call of ops[i], e = 2*i + 1 its return.  At equal times calls
    # sort first (0 < 1): touching intervals count as concurrent.
    def when(e: int) -> tuple[float, int]:
        op = ops[e >> 1]
        if not e & 1:
            return op.invoke, 0
        return (inf if op.complete is None else op.complete), 1

    events = sorted(range(2 * n), key=when)
    head, tail = 2 * n, 2 * n + 1
    nxt = [0] * (2 * n + 2)
    prv = [0] * (2 * n + 2)
    chain = [head, *events, tail]
    for a, b in zip(chain, chain[1:]):
        nxt[a] = b
        prv[b] = a
    unknown = [op.complete is None for op in ops]
    read_only = [step[0] in (_GET, _CAS_FAILED) for step in steps]

    state = initial
    linearized = 0  # bitmask of lifted operations
    seen: set[tuple[int, str | None]] = set()
    stack: list[tuple[int, str | None]] = []  # (call event, state before it)
    stuck: _Stuck | None = None
    left = budget.left
    entry = nxt[head]
    while entry != tail:
        i = entry >> 1
        if not entry & 1:  # a call: try to linearize ops[i] now
            if left <= 0:
                budget.left = 0
                return "budget"
            left -= 1
            kind, a, b = steps[i]
            if kind == _PUT:
                accepted, after = True, a
            elif kind == _GET:
                accepted, after = state == a, state
            elif kind == _DELETE:
                accepted, after = True, None
            elif kind == _CAS_FAILED:
                accepted, after = state != a, state
            else:  # _CAS_OK
                accepted, after = state == a, b
            if not accepted:
                entry = nxt[entry]
                continue
            grown = linearized | (1 << i)
            if (grown, after) not in seen:
                seen.add((grown, after))
                stack.append((entry, state))
                state, linearized = after, grown
                ret = entry + 1  # lift: unlink the call and its return
                nxt[prv[entry]] = nxt[entry]
                prv[nxt[entry]] = prv[entry]
                nxt[prv[ret]] = nxt[ret]
                prv[nxt[ret]] = prv[ret]
                entry = nxt[head]
                continue
            if not read_only[i]:
                entry = nxt[entry]
                continue
            # A read-only operation that fits now can always be linearized now (moving
            # it earlier changes no state and breaks no real-time order).  So if that
            # leads to a state already known to fail, so does this prefix: backtrack.
        else:  # a return: ops[i] reached its deadline unlinearized
            if unknown[i]:
                break  # only unknown operations remain, and they may all be left out
            if stuck is None or len(stack) > stuck.depth:
                stuck = _Stuck(i, len(stack), linearized, state)
        # Backtrack.  Popping a read-only operation fails its parent prefix as well (same
        # argument as above), so keep popping until the last state-changing one.
        while True:
            if not stack:
                budget.left = left
                assert stuck is not None  # a known-failed state implies a return was hit
                return stuck
            entry, state = stack.pop()
            linearized &= ~(1 << (entry >> 1))
            ret = entry + 1  # unlift: relink the return, then the call
            nxt[prv[ret]] = ret
            prv[nxt[ret]] = ret
            nxt[prv[entry]] = entry
            prv[nxt[entry]] = entry
            if not read_only[entry >> 1]:
                break
        entry = nxt[entry]
    budget.left = left
    return None


def _window(ops: list[Operation], stuck: _Stuck) -> list[int]:
    """Indices of the operations a person needs to see: those overlapping the stuck
    operation, back to the last write that definitely finished before it began (the
    value it "should" have seen), nearest first when there are too many."""
    target = ops[stuck.op]
    start = target.invoke
    finished_before = [
        op
        for op in ops
        if op.kind != "get" and op.complete is not None and op.complete < target.invoke
    ]
    if finished_before:
        start = max(finished_before, key=lambda op: op.complete).invoke
    end = target.complete
    chosen = [
        i
        for i, op in enumerate(ops)
        if op.invoke <= end and (op.complete is None or op.complete >= start)
    ]
    if len(chosen) > WINDOW_LIMIT:
        chosen.sort(key=lambda i: (i != stuck.op, abs(ops[i].invoke - target.invoke)))
        chosen = chosen[:WINDOW_LIMIT]
    chosen.sort(key=lambda i: (ops[i].invoke, i))
    return chosen


def _explain(
    key: str, ops: list[Operation], initial: str | None, stuck: _Stuck, window: list[int]
) -> str:
    target = ops[stuck.op]
    lines = [
        f"key {key!r} is not linearizable ({len(ops)} operations on it).",
        "No order of the operations lets this one take effect before it completed:",
        f"  {target.describe()}  [{_t(target.invoke)} .. {_t(target.complete)}]",
        f"The longest linearizable prefix found has {stuck.depth} operation(s) and leaves "
        f"{key!r} {_value(stuck.state)} (initially {_value(initial)}).",
        f"Operations around that point ({len(window)} shown), in order of invocation:",
    ]
    spans = {i: f"[{_t(ops[i].invoke)} .. {_t(ops[i].complete)}]" for i in window}
    width = max(len(span) for span in spans.values())
    for i in window:
        op = ops[i]
        if i == stuck.op:
            mark = "<- cannot be linearized"
        elif stuck.linearized >> i & 1:
            mark = "(in the prefix)"
        else:
            mark = ""
        lines.append(f"  {spans[i]:<{width}}  {op.describe()}  {mark}".rstrip())
    return "\n".join(lines)


def _t(t: float | None) -> str:
    return "?" if t is None else f"{t:g}"


def _value(v: str | None) -> str:
    return "absent" if v is None else f"holding {v!r}"
