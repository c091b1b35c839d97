"""Leases: a TTL and the keys attached to it.

The state machine has no clock.  It only knows which leases exist, their TTL and their
keys.  Time is the leader's business: it tracks when each lease expires (refreshed by
keepalives, and for every lease when it becomes leader, as etcd does) and then proposes
a `lease_expire` command, which deletes the keys on every node at the same log index.

Lease ids are allocated here, in apply order (1, 2, 3, ...), so that every node gives a
grant the same id without the proposer choosing one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter

from .mvcc import LEASE

_LEASE = itemgetter(LEASE)


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int
    # The live keys whose KV names this lease.
    keys: set[str] = field(default_factory=set)


class Leases:
    __slots__ = ("_by_id", "last_id")

    def __init__(self) -> None:
        self._by_id: dict[int, Lease] = {}
        # Invariant: every id ever granted is <= last_id, so ids are never reused.
        self.last_id = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, lease_id: int) -> Lease | None:
        return self._by_id.get(lease_id)

    def grant(self, ttl: int) -> Lease:
        self.last_id += 1
        lease = self._by_id[self.last_id] = Lease(self.last_id, ttl)
        return lease

    def add(self, lease: Lease) -> None:
        """Restore a lease read from a snapshot."""
        self._by_id[lease.id] = lease
        self.last_id = max(self.last_id, lease.id)

    def remove(self, lease_id: int) -> Lease:
        return self._by_id.pop(lease_id)

    def attach(self, key: str, lease_id: int) -> None:
        self._by_id[lease_id].keys.add(key)

    def detach(self, key: str, lease_id: int) -> None:
        lease = self._by_id.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)

    def all(self) -> list[Lease]:
        """Every lease, by id."""
        return [self._by_id[i] for i in sorted(self._by_id)]

    def capture(self) -> list[list[int]]:
        """[[id, ttl], ...] by id (a snapshot's `leases`; the keys follow from the KVs)."""
        return [[lease.id, lease.ttl] for lease in self.all()]

    @classmethod
    def from_capture(cls, leases: list, last_id: object, live: dict[str, tuple]) -> "Leases":
        """The leases of a snapshot, with the keys of the live KVs attached; ValueError
        (or TypeError) if they do not fit together."""
        restored = cls()
        for lease_id, ttl in leases:
            if type(lease_id) is not int or type(ttl) is not int or lease_id < 1:
                raise ValueError(f"bad lease [{lease_id!r}, {ttl!r}]")
            restored.add(Lease(lease_id, ttl))
        if type(last_id) is not int or last_id < restored.last_id:
            raise ValueError(f"last_lease_id {last_id!r} is below a lease id")
        restored.last_id = last_id
        # Most keys have no lease: pick the ones that do in C (a restart's time).
        for key in compress(live, map(_LEASE, live.values())):
            lease = live[key][LEASE]
            if restored.get(lease) is None:
                raise ValueError(f"key {key!r} is attached to lease {lease}, which does not exist")
            restored.attach(key, lease)
        return restored
