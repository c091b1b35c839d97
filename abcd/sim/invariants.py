"""The safety properties of Raft (Figure 3 of the paper), checked after every event.

To keep each check O(1) per new entry, every node's log is mirrored as a list of
prefix hashes: h[i] summarizes entries 1..i, so two logs agree up to i exactly
when their h[i] are equal (barring a hash collision, which only weakens a check).
"""
from __future__ import annotations


class InvariantViolation(AssertionError):
    pass


class LogMirror:
    """Prefix hashes of one node's in-memory log, maintained from its Persist effects."""

    __slots__ = ("hashes", "terms", "first_index")

    def __init__(self) -> None:
        self.hashes: list[int] = [0]  # hashes[i] covers entries 1..i; hashes[0] is the empty log
        self.terms: list[int] = [0]

    def replace_from(self, entries) -> None:
        start = entries[0].index
        del self.hashes[start:]
        del self.terms[start:]
        h = self.hashes[-1]
        for e in entries:
            h = hash((h, e.term, e.kind, e.data))
            self.hashes.append(h)
            self.terms.append(e.term)

    @property
    def last_index(self) -> int:
        return len(self.hashes) - 1

    def reset(self, entries) -> None:
        self.hashes, self.terms = [0], [0]
        if entries:
            self.replace_from(entries)


class SafetyChecker:
    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> the leader elected in it
        self.committed: dict[int, int] = {}  # index -> prefix hash of a committed log
        self.max_committed = 0
        self.applied: dict[int, tuple] = {}  # index -> (term, data) applied by anyone
        self.mirrors: dict[int, LogMirror] = {}

    def check_leader(self, node_id: int, term: int) -> None:
        """Election Safety: at most one leader per term.  Leader Completeness too."""
        other = self.leaders.setdefault(term, node_id)
        if other != node_id:
            raise InvariantViolation(f"Election Safety: nodes {other} and {node_id} are both leaders in term {term}")
        mirror = self.mirrors[node_id]
        index = self.max_committed
        if index and (mirror.last_index < index or mirror.hashes[index] != self.committed[index]):
            raise InvariantViolation(
                f"Leader Completeness: leader {node_id} of term {term} lacks committed entries up to {index}"
            )

    def check_new_entries(self, node_id: int, start: int) -> None:
        """Log Matching: same index and term means the same prefix, on every pair of logs."""
        mine = self.mirrors[node_id]
        for other_id, other in self.mirrors.items():
            if other_id == node_id:
                continue
            top = min(mine.last_index, other.last_index)
            for i in range(start, top + 1):
                if mine.terms[i] == other.terms[i] and mine.hashes[i] != other.hashes[i]:
                    raise InvariantViolation(
                        f"Log Matching: nodes {node_id} and {other_id} hold index {i} of term {mine.terms[i]} "
                        "but their logs differ before it"
                    )

    def replace_entries(self, node_id: int, entries) -> None:
        """Mirror a Persist; a log that held committed entries may never lose them."""
        mine = self.mirrors[node_id]
        start = entries[0].index
        top = min(mine.last_index, self.max_committed)
        held_committed = top >= start and mine.hashes[top] == self.committed[top]
        mine.replace_from(entries)
        if held_committed and (mine.last_index < top or mine.hashes[top] != self.committed[top]):
            raise InvariantViolation(f"node {node_id} overwrote committed entries from index {start}")
        self.check_new_entries(node_id, start)

    def check_commit(self, node_id: int, commit_index: int) -> None:
        mirror = self.mirrors[node_id]
        if commit_index > mirror.last_index:
            raise InvariantViolation(f"node {node_id} commit_index {commit_index} is beyond its log")
        if commit_index <= self.max_committed:
            if self.committed.get(commit_index, mirror.hashes[commit_index]) != mirror.hashes[commit_index]:
                raise InvariantViolation(f"node {node_id} committed a different entry at {commit_index}")
            return
        # New commits: they must extend what was committed before.
        if self.max_committed and mirror.hashes[self.max_committed] != self.committed[self.max_committed]:
            raise InvariantViolation(
                f"node {node_id} commits up to {commit_index} on a log that differs from the committed one"
            )
        for i in range(self.max_committed + 1, commit_index + 1):
            self.committed[i] = mirror.hashes[i]
        self.max_committed = commit_index

    def check_promise(self, m, hard_state, durable_log, log, in_flight) -> None:
        """Durability before speech (thesis §3.8): what a message promises is on disk.

        A held message is released after later state changes may already be in
        memory (a newer term, a truncated suffix) while still in flight to disk; it
        was true when written, so it is only checked against what it could know.
        """
        kind = type(m).__name__
        if kind == "AppendEntriesResponse":
            if m.success and m.match_index > 0:
                i = m.match_index
                rewriting = any(p.entries and p.entries[0].index <= i for p in in_flight)
                if len(durable_log) < i or (not rewriting and durable_log[i - 1].term != log.term_at(i)):
                    raise InvariantViolation(
                        f"node {m.source} acknowledged entries up to {i} before they were durable"
                    )
            return
        if m.pre_vote or (kind == "RequestVoteResponse" and not m.vote_granted):
            return
        candidate = m.dest if kind == "RequestVoteResponse" else m.source
        if hard_state.current_term < m.term or (
            hard_state.current_term == m.term and hard_state.voted_for != candidate
        ):
            what = "granted its vote" if kind == "RequestVoteResponse" else "asked for votes"
            raise InvariantViolation(f"node {m.source} {what} in term {m.term} before that vote was durable")

    def check_apply(self, node_id: int, entries) -> None:
        """State Machine Safety: no two servers apply different entries at one index."""
        applied = self.applied
        for e in entries:
            seen = applied.setdefault(e.index, (e.term, e.data))
            if seen != (e.term, e.data):
                raise InvariantViolation(
                    f"State Machine Safety: node {node_id} applied {(e.term, e.data)!r} at index {e.index}, "
                    f"another node applied {seen!r}"
                )
