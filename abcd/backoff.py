"""Pauses between attempts: the peer transport's redials and the client's retries."""
from __future__ import annotations

import random


class Backoff:
    """Delays doubling from `initial` to `maximum`, each drawn in [d/2, d].

    The jitter keeps peers that lost a node together from redialing in lockstep, and
    clients that lost a leader together from retrying in lockstep.
    """

    __slots__ = ("initial", "maximum", "rng", "_current", "_failures", "_retry_after")

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rng = rng or random.Random()
        self._current = initial
        self._failures = 0
        self._retry_after: float | None = None  # the longest asked for in this round

    def next_delay(self) -> float:
        delay = self._current * (0.5 + 0.5 * self.rng.random())
        self._current = min(self._current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._current = self.initial

    def pause(self, retry_after: float | None, endpoints: int) -> float:
        """The pause after a failed attempt of a call that goes round `endpoints` nodes.

        A node's Retry-After speaks for that node only (it knows no leader yet); another
        member may well know one.  So it is honoured (up to `maximum`) once a whole round
        of endpoints has failed, not before the next endpoint is tried.
        """
        self._failures += 1
        if retry_after is not None:
            self._retry_after = max(self._retry_after or 0.0, retry_after)
        pause = self.next_delay()
        if self._failures % max(1, endpoints) == 0 and self._retry_after is not None:
            pause = max(pause, min(self._retry_after, self.maximum))
            self._retry_after = None
        return pause
