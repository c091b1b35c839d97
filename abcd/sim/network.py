"""The simulated network: seeded delays, loss, duplication, reordering, partitions."""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class NetworkFaults:
    """How hostile the network is.  Delays are in virtual milliseconds."""

    min_delay: float = 0.5
    max_delay: float = 5.0
    # A fraction of messages take up to `slow_delay` instead: this reorders them.
    slow_rate: float = 0.0
    slow_delay: float = 60.0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0


class Network:
    def __init__(self, rng: random.Random, faults: NetworkFaults) -> None:
        self.rng = rng
        self.faults = faults
        # Directed links that are cut: (source, dest).
        self.cut: set[tuple[int, int]] = set()

    def deliveries(self, source: int, dest: int) -> list[float]:
        """The delays after which copies of one message arrive (empty: lost)."""
        if (source, dest) in self.cut:
            return []
        f, rng = self.faults, self.rng
        if f.drop_rate and rng.random() < f.drop_rate:
            return []
        copies = 2 if f.duplicate_rate and rng.random() < f.duplicate_rate else 1
        delays = []
        for _ in range(copies):
            if f.slow_rate and rng.random() < f.slow_rate:
                delays.append(rng.uniform(f.max_delay, f.slow_delay))
            else:
                delays.append(rng.uniform(f.min_delay, f.max_delay))
        return delays

    def partition(self, side: set[int], nodes: list[int], *, one_way: bool = False) -> None:
        """Cut every link from `side` to the rest (and back, unless one_way)."""
        for a in side:
            for b in nodes:
                if b not in side:
                    self.cut.add((a, b))
                    if not one_way:
                        self.cut.add((b, a))

    def heal(self) -> None:
        self.cut.clear()
