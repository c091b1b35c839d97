"""One readable line per effect of the Raft core, for scenario transcripts.

The lines are the transcript's vocabulary, so they must stay stable and say exactly
what matters to Raft: terms, the index@term anchors of AppendEntries, which entries
travel, what is made durable and what is applied.
"""
from __future__ import annotations

from abcd.raft.config import decode_config
from abcd.raft.effects import Accepted, Apply, NotLeader, Persist, ReadReady, Rejected, Reply, Restore, Send, Trace
from abcd.raft.messages import (
    ENTRY_CONFIG,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNow,
)


def ids(values) -> str:
    return ",".join(str(v) for v in sorted(values)) or "none"


def span(entries) -> str:
    """4..5 for a run of entries, 4 for one."""
    first, last = entries[0].index, entries[-1].index
    return str(first) if first == last else f"{first}..{last}"


def entry_data(e: Entry) -> str:
    if e.kind == ENTRY_CONFIG:
        c = decode_config(e.data)
        learners = f" learners={ids(c.learners)}" if c.learners else ""
        return f"config(voters={ids(c.voters)}{learners})"
    if not e.data:
        return "noop"
    return e.data.decode(errors="backslashreplace")


def runs(entries) -> str:
    """Entries grouped into runs of one term: `2..4@1 5@2` (index range @ term)."""
    groups: list[list[Entry]] = []
    for e in entries:
        if groups and groups[-1][-1].term == e.term:
            groups[-1].append(e)
        else:
            groups.append([e])
    return " ".join(f"{span(g)}@{g[0].term}" for g in groups) or "none"


def message(m) -> str:
    kind = type(m)
    if kind is RequestVoteRequest:
        name = "PreVote" if m.pre_vote else "RequestVote"
        extra = ", transfer" if m.transfer else ""
        return f"{name}(term={m.term}, last={m.last_log_index}@{m.last_log_term}{extra})"
    if kind is RequestVoteResponse:
        name = "PreVoteResponse" if m.pre_vote else "RequestVoteResponse"
        return f"{name}(term={m.term}, {'granted' if m.vote_granted else 'rejected'})"
    if kind is AppendEntriesRequest:
        parts = [f"term={m.term}", f"prev={m.prev_log_index}@{m.prev_log_term}"]
        if m.entries:
            parts.append(f"entries={runs(m.entries)}")
        parts.append(f"commit={m.leader_commit}")
        if m.read_round:
            parts.append(f"read={m.read_round}")
        return f"AppendEntries({', '.join(parts)})"
    if kind is AppendEntriesResponse:
        if m.success:
            parts = [f"term={m.term}", f"ok match={m.match_index}"]
        else:
            parts = [f"term={m.term}", f"reject prev={m.rejected_index}", f"hint={m.conflict_index}@{m.conflict_term}"]
        if m.read_round:
            parts.append(f"read={m.read_round}")
        return f"AppendEntriesResponse({', '.join(parts)})"
    if kind is TimeoutNow:
        return f"TimeoutNow(term={m.term})"
    if kind is InstallSnapshotRequest:
        learners = f", learners={ids(m.learners)}" if m.learners else ""
        data = f", data={m.data.decode(errors='backslashreplace')!r}" if m.data else ""
        return (
            f"InstallSnapshot(term={m.term}, last={m.last_included_index}@{m.last_included_term}, "
            f"voters={ids(m.voters)}{learners}{data})"
        )
    if kind is InstallSnapshotResponse:
        return f"InstallSnapshotResponse(term={m.term}, match={m.match_index})"
    raise TypeError(f"not a peer message: {m!r}")


def result(r) -> str:
    kind = type(r)
    if kind is Accepted:
        where = str(r.first_index) if r.first_index == r.last_index else f"{r.first_index}..{r.last_index}"
        return f"Accepted(term={r.term}, {where})"
    if kind is NotLeader:
        return f"NotLeader(leader={r.leader_id})"
    if kind is ReadReady:
        return f"ReadReady(index={r.read_index})"
    if kind is Rejected:
        return f"Rejected({r.reason!r})"
    raise TypeError(f"not a reply result: {r!r}")


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple, set, frozenset)):
        return ids(v)
    return str(v)


def trace(node_id: int, t: Trace) -> str:
    fields = dict(t.fields)
    fields.pop("role", None)  # implied by the event's name
    term = fields.pop("term", None)
    parts = [f"n{node_id}", t.name]
    if term is not None:
        parts.append(f"term={term}")
    parts.extend(f"{k}={_value(v)}" for k, v in fields.items())
    return " ".join(parts)


def snapshot(s) -> str:
    learners = f" learners={ids(s.learners)}" if s.learners else ""
    return f"{s.last_included_index}@{s.last_included_term} voters={ids(s.voters)}{learners}"


def persist(node_id: int, p: Persist) -> str:
    parts = [f"n{node_id} persist seq={p.seq}"]
    if p.snapshot is not None:
        parts.append(f"snapshot={snapshot(p.snapshot)} data={p.snapshot_data.decode(errors='backslashreplace')!r}")
    if p.hard_state is not None:
        parts.append(f"term={p.hard_state.current_term} vote={p.hard_state.voted_for}")
    if p.entries:
        parts.append(f"entries={runs(p.entries)}")
    return " ".join(parts)


def effect(node_id: int, e) -> str:
    """The transcript line of one effect returned by node `node_id`."""
    kind = type(e)
    if kind is Send:
        return f"n{node_id} -> n{e.message.dest} {message(e.message)}"
    if kind is Persist:
        return persist(node_id, e)
    if kind is Apply:
        data = ", ".join(entry_data(x) for x in e.entries)
        return f"n{node_id} apply {span(e.entries)} [{data}]"
    if kind is Restore:
        return f"n{node_id} restore {snapshot(e.snapshot)} data={e.data.decode(errors='backslashreplace')!r}"
    if kind is Reply:
        return f"n{node_id} reply tag={e.tag} {result(e.result)}"
    if kind is Trace:
        return trace(node_id, e)
    raise TypeError(f"unknown effect {e!r}")
