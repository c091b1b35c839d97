"""The node's state as `GET /v1/status` and the event stream show it.

The leader, role, term, commit index and configuration come from the node's view
of the core (core_view.py: the soft state of the last step record), like everywhere
in the node.  What only a watcher wants, and what changes every tick or every step
(the election timer, the lease, each follower's progress, the log's bounds and
terms, the vote), is read from the core here and nowhere else, in one pass between
steps: carrying it in every step record would cost every write for the sake of a
dashboard.  The pass costs some tens of microseconds (docs/performance.md, "What an open dashboard costs"): the
event stream asks for it every 250 ms while someone watches, and nothing here runs
otherwise.  Times are the core's logical ticks (one per heartbeat
interval) times the heartbeat interval, so they move in steps of `heartbeat_ms`.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

from .. import __version__
from ..raft.roles import LEADER


def log_terms(log) -> list[list[int]]:
    """The log as runs `[[first index, term], ...]`: entries from a run's first index
    up to the next run's (or the last index) have its term.

    Terms in a Raft log never decrease (a leader appends entries of its own term after
    those it holds, §5.3), so each run's end is found by a binary search: the cost
    grows with the number of terms in the log, not with its length.
    """
    first, last = log.first_index, log.last_index
    indexes = range(first, last + 1)
    term_at = log.term_at
    runs: list[list[int]] = []
    start = first
    while start <= last:
        term = term_at(start)
        runs.append([start, term])
        start = first + bisect_right(indexes, term, lo=start - first + 1, key=term_at)
    return runs


def lease_remaining_ticks(core) -> int | None:
    """Ticks a leader keeps leading if it hears from nobody from now on; None unless
    it leads with check quorum on.

    Check quorum (raft/core.py, tick_leader): every `election_ticks` ticks the leader
    steps down unless a majority of voters (itself included) was heard from since the
    previous check.  A leader that has heard from a majority in the current round
    passes the coming check, so it holds until the check after that.  A higher term
    or its own removal ends leadership earlier, whatever the lease says.
    """
    if core.role != LEADER or not core.options.check_quorum:
        return None
    election_ticks = core.options.election_ticks
    remaining = max(0, election_ticks - core.election_elapsed)
    heard = {core.id}
    heard.update(peer for peer, pr in core.progress.items() if pr.recent_active)
    if core.config.has_quorum(heard):
        remaining += election_ticks
    return remaining


def progress(core) -> dict[str, dict[str, Any]] | None:
    """A leader's view of each follower's log (JSON keys are strings); None on others."""
    if core.role != LEADER:
        return None
    return {
        str(peer): {"match_index": pr.match_index, "next_index": pr.next_index, "state": pr.state}
        for peer, pr in sorted(core.progress.items())
    }


def describe(node) -> dict[str, Any]:
    """The `GET /v1/status` body."""
    view = node.view
    soft = view.soft
    core = node.core  # the dashboard-only fields (module doc)
    log = core.log
    leader = soft.leader_id
    heartbeat_ms = node.config.heartbeat_ms
    voter = node.node_id in view.config.voters
    # A leader never times out (its lease says how long it holds), nor does a learner.
    timing_out = voter and soft.role != LEADER
    lease = lease_remaining_ticks(core)
    faults = node.faults
    return {
        "id": node.node_id,
        "name": node.config.name,
        "cluster_id": node.cluster_id,
        "address": node.config.advertise,
        "role": soft.role,
        "term": soft.term,
        "voted_for": core.voted_for,
        "leader": leader,
        "leader_address": node.membership.address_of(leader),
        "voter": voter,
        "commit_index": soft.commit_index,
        "applied_index": core.last_applied,
        "last_log_index": log.last_index,
        "snapshot_index": log.snapshot_index,
        "log_terms": log_terms(log),
        "heartbeat_ms": heartbeat_ms,
        "election_elapsed_ms": core.election_elapsed * heartbeat_ms if timing_out else None,
        "election_timeout_ms": core.randomized_election_timeout * heartbeat_ms if timing_out else None,
        "lease_remaining_ms": lease * heartbeat_ms if lease is not None else None,
        "progress": progress(core),
        "revision": node.store.current_revision,
        "compact_revision": node.store.compact_revision,
        "members": node.membership.describe(view),
        "faults_enabled": faults is not None,
        "faults": faults.to_json() if faults is not None else None,
        "version": __version__,
    }
