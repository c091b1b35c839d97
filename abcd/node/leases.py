"""Lease expiry: the leader's clock for the store's leases.

The store knows which leases exist and their TTLs, not time (abcd/kv/lease.py).  The
leader keeps a deadline per lease and, when one passes, proposes
`{"op": "lease_expire", "lease": id}`, which deletes the lease's keys on every node at
the same log index.  A keepalive (served by the leader) pushes the deadline back.

`on_tick` reconciles the deadlines with the store's leases every tick, so grants,
revokes and expiries need no hooks: a lease the store gained gets a full TTL, one it
lost is forgotten.  A new leader gives every lease a full TTL from when it took over,
as etcd does: a lease may outlive its TTL across a leader change, never die early.
"""
from __future__ import annotations


class LeaseTimers:
    def __init__(self, retry_seconds: float) -> None:
        # Seconds before an expiry that did not apply is proposed again.
        self.retry_seconds = retry_seconds
        self.deadlines: dict[int, float] = {}
        self._term: int | None = None  # the term we lead in, None when not leading

    def on_tick(self, leases: list[tuple[int, int]], now: float, *, leading: bool, term: int) -> list[int]:
        """The ids of leases to expire now (`leases`: the store's (id, ttl) pairs)."""
        if not leading:
            self.deadlines = {}
            self._term = None
            return []
        if term != self._term:
            self.deadlines = {}
            self._term = term
        old = self.deadlines
        self.deadlines = {lease_id: old.get(lease_id, now + ttl) for lease_id, ttl in leases}
        expired = [lease_id for lease_id, deadline in self.deadlines.items() if deadline <= now]
        for lease_id in expired:
            self.deadlines[lease_id] = now + self.retry_seconds
        return expired

    def keepalive(self, lease_id: int, ttl: int, now: float) -> None:
        if self._term is not None:
            self.deadlines[lease_id] = now + ttl
