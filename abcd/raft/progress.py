"""The leader's view of one follower (etcd's Progress; thesis §3.5 and §10.2.1).

PROBE: we do not know where the follower's log matches ours; send one
AppendEntries at a time and wait for its answer before guessing again.
REPLICATE: the logs match up to match_index; stream entries optimistically,
advancing next_index as we send, with at most `max_inflight` requests unanswered.
SNAPSHOT: the follower needs entries the leader has compacted away, so an
InstallSnapshot is on its way (Figure 13); no AppendEntries carry entries to it
until that is answered or presumed lost.
"""
from __future__ import annotations

from collections import deque

PROBE = "probe"
REPLICATE = "replicate"
SNAPSHOT = "snapshot"


class Progress:
    __slots__ = (
        "match_index",
        "next_index",
        "state",
        "probe_sent",
        "inflight",
        "max_inflight",
        "recent_active",
        "pending_snapshot",
        "snapshot_sent_tick",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        # Invariant: match_index < next_index.
        self.match_index = 0
        self.next_index = next_index
        self.state = PROBE
        self.probe_sent = False
        # (last index, tick sent) of each AppendEntries in flight, oldest first (REPLICATE only).
        self.inflight: deque[tuple[int, int]] = deque()
        self.max_inflight = max_inflight
        # Heard from since the last check-quorum round (§6.2, thesis §9.6).
        self.recent_active = False
        # SNAPSHOT only: the index the leader's InstallSnapshot named, and when it left.
        self.pending_snapshot = 0
        self.snapshot_sent_tick = 0

    def paused(self) -> bool:
        if self.state == PROBE:
            return self.probe_sent
        if self.state == SNAPSHOT:
            return True
        return len(self.inflight) >= self.max_inflight

    def become_probe(self) -> None:
        self.state = PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.next_index = self.match_index + 1

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.probe_sent = False
        self.inflight.clear()
        self.next_index = self.match_index + 1

    def become_snapshot(self, snapshot_index: int, tick: int) -> None:
        """An InstallSnapshot naming `snapshot_index` went out at `tick`."""
        self.state = SNAPSHOT
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = snapshot_index
        self.snapshot_sent_tick = tick
        # Where replication would resume if the snapshot is installed as named; the
        # answer may name a later index (the shell sends its newest snapshot).
        self.next_index = max(self.match_index, snapshot_index) + 1

    def sent(self, last_index: int, tick: int) -> None:
        """An AppendEntries carrying entries up to last_index went out at `tick`."""
        if self.state == REPLICATE:
            self.next_index = last_index + 1
            self.inflight.append((last_index, tick))
        else:
            self.probe_sent = True

    def update(self, match_index: int) -> bool:
        """The follower stores our log up to match_index; returns True if that is news."""
        self.probe_sent = False
        while self.inflight and self.inflight[0][0] <= match_index:
            self.inflight.popleft()
        if match_index > self.match_index:
            self.match_index = match_index
            if self.next_index <= match_index:
                self.next_index = match_index + 1
            return True
        return False

    def stalled(self, now_tick: int, patience: int) -> bool:
        """The oldest request in flight went unanswered for `patience` ticks: presume it lost."""
        if self.state == SNAPSHOT:
            return now_tick - self.snapshot_sent_tick >= patience
        return bool(self.inflight) and now_tick - self.inflight[0][1] >= patience

    def __repr__(self) -> str:
        if self.state == SNAPSHOT:
            return f"Progress({self.state}, match={self.match_index}, pending_snapshot={self.pending_snapshot})"
        return f"Progress({self.state}, match={self.match_index}, next={self.next_index}, inflight={len(self.inflight)})"
