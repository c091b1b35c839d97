"""The nemesis's schedule, drawn from a seed.

A schedule is a sequence of faults, one at a time: each is applied, held, healed, and
followed by a quiet gap before the next.  The seed fixes the sequence (kinds, hold
times, gaps, which member a "random" fault picks, the latency and loss figures), so
`--seed N` replays it; which member leads when a fault begins is up to the cluster.

Hold times are in election timeouts, so a pause or a partition always outlasts one and
the cluster must elect a new leader around it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

# Every kind the nemesis knows, in the order the report lists them.
KINDS = (
    "kill",               # kill -9 a member (the leader or a random one), restart it after the hold
    "pause",              # SIGSTOP a member longer than an election timeout, then SIGCONT
    "partition-leader",   # cut the leader off from every other member
    "partition-split",    # a random minority on one side, the majority on the other
    "latency",            # delay (and jitter) on every link
    "loss",               # lose a share of the messages on every link
    "transfer",           # hand leadership to another voter
    "replace",            # a member loses its disk: wiped, refused its old identity, removed, joins again as a new member
    "learner",            # a member is removed and wiped, added back as a learner, then promoted
    "partition-oneway",   # a member (the leader or a random one) still hears the others, its messages to them are lost
)
TARGETED = frozenset({"kill", "pause", "partition-oneway"})
MEMBERSHIP = frozenset({"replace", "learner"})


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """One fault of the schedule.  `target` is "leader" or "random"; `pick` chooses the
    member when random (an index into the candidates, modulo their number)."""

    kind: str
    hold: float  # seconds the fault lasts before it is healed
    gap: float  # quiet seconds after it heals
    target: str = "leader"
    pick: int = 0
    params: dict = field(default_factory=dict)

    def describe(self) -> str:
        text = self.kind
        if self.kind in TARGETED:
            text += f" {self.target}"
        if self.params:
            text += " " + " ".join(f"{k}={v}" for k, v in self.params.items())
        return text


def parse_kinds(text: str) -> tuple[str, ...]:
    """'all' or a comma-separated list of KINDS; ValueError naming the unknown one."""
    if text.strip() == "all":
        return KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(KINDS)} (or 'all')")
    if not kinds:
        raise ValueError("no fault kind given; choose from " + ", ".join(KINDS))
    return kinds


def draw(seed: int, kinds: tuple[str, ...], election_timeout_s: float, count: int = 1000) -> list[FaultPlan]:
    """The first `count` faults of the schedule for `seed` (the run takes as many as fit)."""
    rng = random.Random(seed)
    et = election_timeout_s
    plans = []
    for _ in range(count):
        kind = rng.choice(kinds)
        hold = rng.uniform(2.0, 4.0) * et
        gap = rng.uniform(1.0, 3.0) * et
        target = rng.choice(("leader", "random"))
        pick = rng.randrange(1 << 30)
        params: dict = {}
        if kind == "latency":
            params = {"delay_ms": rng.choice((10, 25, 50, 100)), "jitter_ms": rng.choice((0, 10, 50))}
        elif kind == "loss":
            params = {"drop_rate": rng.choice((0.1, 0.2, 0.3))}
        elif kind == "kill":
            hold = rng.uniform(0.5, 3.0) * et
        plans.append(FaultPlan(kind, round(hold, 3), round(gap, 3), target, pick, params))
    return plans
