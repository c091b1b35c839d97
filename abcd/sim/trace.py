"""A readable trace of a simulated run: one line per role change, commit or message."""
from __future__ import annotations

from ..raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestVoteRequest,
    RequestVoteResponse,
)


def describe(m) -> str:
    kind = type(m)
    if kind is RequestVoteRequest:
        what = "PreVote" if m.pre_vote else "RequestVote"
        return f"{what}(term={m.term}, last_log={m.last_log_index}@{m.last_log_term})"
    if kind is RequestVoteResponse:
        what = "PreVoteResponse" if m.pre_vote else "RequestVoteResponse"
        return f"{what}(term={m.term}, granted={m.vote_granted})"
    if kind is AppendEntriesRequest:
        span = f"{m.entries[0].index}..{m.entries[-1].index}" if m.entries else "heartbeat"
        return f"AppendEntries(term={m.term}, prev={m.prev_log_index}@{m.prev_log_term}, {span}, commit={m.leader_commit})"
    if kind is AppendEntriesResponse:
        if m.success:
            return f"AppendEntriesResponse(term={m.term}, ok, match={m.match_index})"
        return f"AppendEntriesResponse(term={m.term}, reject at {m.rejected_index}, hint={m.conflict_index}@{m.conflict_term})"
    if kind is InstallSnapshotRequest:
        return (
            f"InstallSnapshot(term={m.term}, last_included={m.last_included_index}@{m.last_included_term}, "
            f"voters={sorted(m.voters)}, {len(m.data)} bytes)"
        )
    if kind is InstallSnapshotResponse:
        return f"InstallSnapshotResponse(term={m.term}, match={m.match_index})"
    return repr(m)


class TracePrinter:
    def __init__(self, out) -> None:
        self.out = out

    def __call__(self, now: float, node_id: int, trace) -> None:
        fields = dict(trace.fields)
        term = fields.pop("term", "")
        role = fields.pop("role", "")
        message = fields.pop("message", None)
        if message is not None:
            peer = message.dest if trace.name == "Send" else message.source
            arrow = "->" if trace.name == "Send" else "<-"
            detail = f"{arrow} n{peer} {describe(message)}"
        else:
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
        who = "--" if node_id is None else f"n{node_id}"  # None: the whole cluster (a partition)
        self.out.write(f"{now:10.3f} ms  {who:<3} {role:<13} t{term:<3} {trace.name:<20} {detail}\n")
