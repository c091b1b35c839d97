"""The safety properties of Raft (Figure 3 of the paper), checked after every event.

To keep each check O(1) per new entry, every node's log is mirrored as a list of
prefix hashes: h[i] summarizes entries 1..i, so two logs agree up to i exactly
when their h[i] are equal (barring a hash collision, which only weakens a check).
"""
from __future__ import annotations


class InvariantViolation(AssertionError):
    """A safety property broke.  `invariant` names it (Figure 3's names where it is one
    of them: Election Safety, Log Matching, Leader Completeness, State Machine Safety),
    `members` are the ids of the nodes involved; a recorded run shows both."""

    def __init__(self, message: str, *, invariant: str, members=()) -> None:
        super().__init__(message)
        self.invariant = invariant
        self.members = tuple(sorted(set(members)))


class LogMirror:
    """Prefix hashes of one node's in-memory log, maintained from its Persist effects.

    A log may start after a snapshot at `base`: hashes[k] then summarizes entries
    1..base+k, and hashes[0] is the hash of the committed prefix the snapshot holds
    (the snapshot is committed state, checked when it is installed).  So the hashes
    of two logs stay comparable at any index both still hold, whatever their bases.
    """

    __slots__ = ("base", "hashes", "terms")

    def __init__(self) -> None:
        self.reset()

    def reset(self, base: int = 0, base_hash: int = 0, base_term: int = 0, entries=()) -> None:
        self.base = base
        self.hashes: list[int] = [base_hash]
        self.terms: list[int] = [base_term]
        if entries:
            self.replace_from(entries)

    def replace_from(self, entries) -> None:
        start = entries[0].index
        if start <= self.base:
            raise InvariantViolation(
                f"entries from index {start} rewrite a log that starts after a snapshot at {self.base}",
                invariant="Log Continuity",
            )
        k = start - self.base
        del self.hashes[k:]
        del self.terms[k:]
        if len(self.hashes) != k:
            raise InvariantViolation(
                f"entries from index {start} leave a gap after index {self.last_index}",
                invariant="Log Continuity",
            )
        h = self.hashes[-1]
        for e in entries:
            h = hash((h, e.term, e.kind, e.data))
            self.hashes.append(h)
            self.terms.append(e.term)

    @property
    def last_index(self) -> int:
        return self.base + len(self.hashes) - 1

    def hash_at(self, index: int) -> int:
        return self.hashes[index - self.base]

    def term_at(self, index: int) -> int:
        return self.terms[index - self.base]


class SafetyChecker:
    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> the leader elected in it
        self.committed: dict[int, int] = {}  # index -> prefix hash of a committed log
        self.max_committed = 0
        # term -> the highest index first seen committed by a node in that term (at or
        # after the term in which it was committed: a node learns of a commit then or later).
        self.committed_in_term: dict[int, int] = {}
        self.applied: dict[int, tuple] = {}  # index -> (term, data) applied by anyone
        self.mirrors: dict[int, LogMirror] = {}

    def check_leader(self, node_id: int, term: int) -> None:
        """Election Safety: at most one leader per term.  Leader Completeness too: every
        entry committed in an earlier term is in the new leader's log or covered by its
        snapshot.  (A leader of a term no later than a commit's may still be elected
        after it, with votes granted before it; §5.4 says nothing about it.)"""
        other = self.leaders.setdefault(term, node_id)
        if other != node_id:
            raise InvariantViolation(
                f"Election Safety: nodes {other} and {node_id} are both leaders in term {term}",
                invariant="Election Safety",
                members=(other, node_id),
            )
        mirror = self.mirrors[node_id]
        index = max((i for t, i in self.committed_in_term.items() if t < term), default=0)
        # A snapshot is committed state (install_snapshot checks it), so comparing at
        # its base covers the entries it replaced.
        at = max(index, mirror.base)
        if index and (mirror.last_index < index or mirror.hash_at(at) != self.committed.get(at)):
            raise InvariantViolation(
                f"Leader Completeness: leader {node_id} of term {term} lacks committed entries up to {index}",
                invariant="Leader Completeness",
                members=(node_id,),
            )

    def check_new_entries(self, node_id: int, start: int) -> None:
        """Log Matching: same index and term means the same prefix, on every pair of logs
        (compared where both still hold the entry, or the snapshot ending there)."""
        mine = self.mirrors[node_id]
        for other_id, other in self.mirrors.items():
            if other_id == node_id:
                continue
            top = min(mine.last_index, other.last_index)
            for i in range(max(start, mine.base, other.base), top + 1):
                if mine.term_at(i) == other.term_at(i) and mine.hash_at(i) != other.hash_at(i):
                    raise InvariantViolation(
                        f"Log Matching: nodes {node_id} and {other_id} hold index {i} of term {mine.term_at(i)} "
                        "but their logs differ before it",
                        invariant="Log Matching",
                        members=(node_id, other_id),
                    )

    def replace_entries(self, node_id: int, entries) -> None:
        """Mirror a Persist; a log that held committed entries may never lose them."""
        mine = self.mirrors[node_id]
        start = entries[0].index
        top = min(mine.last_index, self.max_committed)
        held_committed = top >= start and mine.hash_at(top) == self.committed[top]
        mine.replace_from(entries)
        if held_committed and (mine.last_index < top or mine.hash_at(top) != self.committed[top]):
            raise InvariantViolation(
                f"node {node_id} overwrote committed entries from index {start}",
                invariant="Committed Entries Stay",
                members=(node_id,),
            )
        self.check_new_entries(node_id, start)

    def check_snapshot(self, node_id: int, snapshot) -> None:
        """A snapshot holds committed state only: its last entry is committed and is the
        entry applied there (State Machine Safety for what a snapshot replaces)."""
        index, term = snapshot.last_included_index, snapshot.last_included_term
        if index > self.max_committed:
            raise InvariantViolation(
                f"node {node_id} holds a snapshot up to {index}, beyond the committed index {self.max_committed}",
                invariant="State Machine Safety",
                members=(node_id,),
            )
        seen = self.applied.get(index)
        if seen is None or seen[0] != term:
            raise InvariantViolation(
                f"State Machine Safety: node {node_id} holds a snapshot ending at {index} of term {term}, "
                f"but the entry applied there is {seen!r}",
                invariant="State Machine Safety",
                members=(node_id,),
            )

    def install_snapshot(self, node_id: int, snapshot) -> None:
        """Mirror a Persist that replaced the log with a leader's snapshot."""
        self.check_snapshot(node_id, snapshot)
        index = snapshot.last_included_index
        self.mirrors[node_id].reset(index, self.committed[index], snapshot.last_included_term)
        self.check_new_entries(node_id, index)

    def reset_mirror(self, node_id: int, snapshot, entries) -> None:
        """Mirror what a node holds durably (after a crash): a snapshot and the log after it."""
        if snapshot is None or snapshot.last_included_index == 0:
            self.mirrors[node_id].reset(0, 0, 0, entries)
            return
        index = snapshot.last_included_index
        self.check_snapshot(node_id, snapshot)
        self.mirrors[node_id].reset(index, self.committed[index], snapshot.last_included_term, entries)

    def check_commit(self, node_id: int, commit_index: int, term: int = 0) -> None:
        mirror = self.mirrors[node_id]
        if commit_index > mirror.last_index:
            raise InvariantViolation(
                f"node {node_id} commit_index {commit_index} is beyond its log",
                invariant="Commit Within Log",
                members=(node_id,),
            )
        if commit_index < mirror.base:
            raise InvariantViolation(
                f"node {node_id} commit_index {commit_index} is behind its snapshot at {mirror.base}",
                invariant="Commit Within Log",
                members=(node_id,),
            )
        h = mirror.hash_at(commit_index)
        if commit_index <= self.max_committed:
            if self.committed.get(commit_index, h) != h:
                raise InvariantViolation(
                    f"node {node_id} committed a different entry at {commit_index}",
                    invariant="State Machine Safety",
                    members=(node_id,),
                )
            return
        # New commits: they must extend what was committed before.
        top = self.max_committed
        if top and (top < mirror.base or mirror.hash_at(top) != self.committed[top]):
            raise InvariantViolation(
                f"node {node_id} commits up to {commit_index} on a log that differs from the committed one",
                invariant="State Machine Safety",
                members=(node_id,),
            )
        for i in range(top + 1, commit_index + 1):
            self.committed[i] = mirror.hash_at(i)
        self.max_committed = commit_index
        self.committed_in_term[term] = max(self.committed_in_term.get(term, 0), commit_index)

    def check_promise(self, m, node) -> None:
        """Durability before speech (thesis §3.8): what a message promises is on disk.

        `node` is the sender's simulated storage: its durable hard state, snapshot and
        log, the writes still in flight, and its core.  A held message is released
        after later state changes may already be in memory (a newer term, a truncated
        suffix, an installed snapshot) while still in flight to disk; it was true when
        written, so it is only checked against what it could know.
        """
        kind = type(m).__name__
        if kind in ("AppendEntriesResponse", "InstallSnapshotResponse"):
            if (kind == "InstallSnapshotResponse" or m.success) and m.match_index > 0:
                self._check_durable_through(m.source, m.match_index, node)
            return
        if m.pre_vote or (kind == "RequestVoteResponse" and not m.vote_granted):
            return
        hard_state = node.durable_hard_state
        candidate = m.dest if kind == "RequestVoteResponse" else m.source
        if hard_state.current_term < m.term or (
            hard_state.current_term == m.term and hard_state.voted_for != candidate
        ):
            what = "granted its vote" if kind == "RequestVoteResponse" else "asked for votes"
            raise InvariantViolation(
                f"node {m.source} {what} in term {m.term} before that vote was durable",
                invariant="Durability Before Speech",
                members=(m.source, m.dest),
            )

    @staticmethod
    def _check_durable_through(node_id: int, i: int, node) -> None:
        """The node's log up to index i is durable: in its snapshot or its durable log."""
        snapshot_index = node.snapshot.last_included_index if node.snapshot is not None else 0
        if i <= snapshot_index:
            return
        durable_last = node.log_start + len(node.durable_log)
        term_now = node.core.log.term_at(i)
        rewriting = any(p.snapshot is not None or (p.entries and p.entries[0].index <= i) for p in node.in_flight)
        if durable_last < i or (
            not rewriting and term_now is not None and node.durable_log[i - node.log_start - 1].term != term_now
        ):
            raise InvariantViolation(
                f"node {node_id} acknowledged entries up to {i} before they were durable",
                invariant="Durability Before Speech",
                members=(node_id,),
            )

    def check_apply(self, node_id: int, entries) -> None:
        """State Machine Safety: no two servers apply different entries at one index."""
        applied = self.applied
        for e in entries:
            seen = applied.setdefault(e.index, (e.term, e.data))
            if seen != (e.term, e.data):
                raise InvariantViolation(
                    f"State Machine Safety: node {node_id} applied {(e.term, e.data)!r} at index {e.index}, "
                    f"another node applied {seen!r}",
                    invariant="State Machine Safety",
                    members=(node_id,),
                )
