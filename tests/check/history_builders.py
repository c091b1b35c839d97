"""Short constructors and generators of key-value histories for the checker's tests."""
from __future__ import annotations

import itertools
import random
from dataclasses import replace

from abcd.check import Operation


def put(client, key, value, invoke, complete):
    return Operation(client, "put", key, value, None, None, invoke, complete)


def get(client, key, output, invoke, complete):
    return Operation(client, "get", key, None, None, output, invoke, complete)


def delete(client, key, invoke, complete):
    return Operation(client, "delete", key, None, None, None, invoke, complete)


def cas(client, key, expected, new, output, invoke, complete):
    return Operation(client, "cas", key, new, expected, output, invoke, complete)


def _apply(state, op):
    """(accepted, new state) of a definite or unknown op on a register, as a spec."""
    if op.kind == "put":
        return True, op.value
    if op.kind == "delete":
        return True, None
    if op.kind == "get":
        return op.output == state, state
    if op.unknown:
        return True, (op.value if state == op.expected else state)
    return op.output == (state == op.expected), (op.value if op.output else state)


def brute_force_linearizable(ops, initial=None) -> bool:
    """The definition, enumerated: some subset of the unknown operations together with
    all definite ones, in some order that respects real time, is legal on every key."""
    keys = {op.key for op in ops}
    for key in keys:
        mine = [op for op in ops if op.key == key and not (op.kind == "get" and op.unknown)]
        definite = [op for op in mine if not op.unknown]
        unknown = [op for op in mine if op.unknown]
        found = False
        for r in range(len(unknown) + 1):
            for chosen in itertools.combinations(unknown, r):
                for order in itertools.permutations(definite + list(chosen)):
                    if _legal(order, initial):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        if not found:
            return False
    return True


def _legal(order, initial) -> bool:
    for a, b in itertools.combinations(order, 2):
        # b is placed after a, so b must not have completed before a was invoked.
        if b.complete is not None and b.complete < a.invoke:
            return False
    state = initial
    for op in order:
        accepted, state = _apply(state, op)
        if not accepted:
            return False
    return True


def random_small_history(rng: random.Random, n: int) -> list[Operation]:
    """Arbitrary (often non-linearizable) histories of n ops on one or two keys."""
    values = ["a", "b", "c"]
    ops = []
    for _ in range(n):
        t0 = rng.randint(0, 10)
        t1 = None if rng.random() < 0.2 else t0 + rng.randint(0, 4)
        key = rng.choice("xy")
        client = rng.randint(1, 3)
        kind = rng.choice(["put", "put", "get", "get", "delete", "cas"])
        if kind == "put":
            ops.append(put(client, key, rng.choice(values), t0, t1))
        elif kind == "get":
            out = None if t1 is None else rng.choice(values + [None])
            ops.append(get(client, key, out, t0, t1))
        elif kind == "delete":
            ops.append(delete(client, key, t0, t1))
        else:
            out = None if t1 is None else rng.random() < 0.5
            expected, new = rng.choice(values + [None]), rng.choice(values)
            ops.append(cas(client, key, expected, new, out, t0, t1))
    return ops


def linearizable_history(
    rng: random.Random,
    *,
    operations: int,
    keys: int,
    clients: int,
    unknown_rate: float = 0.0,
) -> list[Operation]:
    """A history produced by a real sequential register per key.

    Each client issues one request at a time with a random duration; each request takes
    effect at a random instant inside its interval (its linearization point).  Replaying
    the requests in the order of those instants gives the outputs, so the history is
    linearizable by construction.  Written values are unique, so a read names its write.
    An unknown-outcome request took effect or not, at random.
    """
    planned = []  # (linearization point, client, kind, key, expected, invoke, complete)
    clock = [0.0] * clients
    for n in range(operations):
        c = rng.randrange(clients)
        invoke = clock[c] + rng.uniform(0.0, 1.0)
        complete = invoke + rng.uniform(0.0, 3.0)
        clock[c] = complete
        point = rng.uniform(invoke, complete)
        kind = rng.choice(["put", "get", "get", "delete", "cas"] if n % 7 else ["put"])
        planned.append((point, n, c, kind, f"k{rng.randrange(keys)}", invoke, complete))
    planned.sort()
    state: dict[str, str | None] = {}
    history = []
    for point, n, c, kind, key, invoke, complete in planned:
        current = state.get(key)
        unknown = rng.random() < unknown_rate
        took_effect = not unknown or rng.random() < 0.5
        value = f"v{n}"
        if kind == "put":
            op = put(c, key, value, invoke, complete)
            new = value
        elif kind == "delete":
            op = delete(c, key, invoke, complete)
            new = None
        elif kind == "get":
            op = get(c, key, current, invoke, complete)
            new = current
        else:
            # Expect the current value half of the time, so both outcomes occur.
            expected = current if rng.random() < 0.5 else f"v{rng.randrange(n + 1)}"
            swapped = current == expected
            op = cas(c, key, expected, value, swapped, invoke, complete)
            new = value if swapped else current
        if took_effect:
            state[key] = new
        if unknown:
            op = replace(op, output=None, complete=None)
        history.append(op)
    history.sort(key=lambda op: op.invoke)
    return history
