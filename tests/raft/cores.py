"""Small builders for unit tests of one RaftCore: a core in a given state, and
readers that pick one part out of a step's record (as lists, for easy asserts).

Every builder drives the core through its public `step` API (ticks, messages,
Persisted) rather than setting fields, so a test's setup obeys the same rules
as a real run.
"""
from __future__ import annotations

from abcd.raft.core import Options, RaftCore
from abcd.raft.effects import Persist, Reply
from abcd.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HardState,
    Persisted,
    RequestVoteResponse,
    Tick,
)
from abcd.raft.roles import FOLLOWER, LEADER, PRE_CANDIDATE

# Figure 2 Raft: no pre-vote, no check-quorum.  Tests of those features opt in.
PLAIN = Options(pre_vote=False, check_quorum=False)


def log_of(*terms: int) -> list[Entry]:
    """A log whose entry i (from 1) has term terms[i-1]."""
    return [Entry(term, index) for index, term in enumerate(terms, start=1)]


def make(node_id: int = 1, voters=(1, 2, 3), *, term: int = 0, vote=None, terms=(), options=PLAIN, seed=0, learners=()):
    return RaftCore(
        node_id,
        voters=voters,
        learners=learners,
        hard_state=HardState(term, vote),
        entries=log_of(*terms),
        seed=seed,
        options=options,
    )


# --------------------------------------------------------------------------- reading effects


def effects_of(record) -> list:
    """The whole step as one list of effects (traces first, then the parts in order)."""
    return list(record.effects())


def sent(record, kind=None) -> list:
    return [m for m in record.messages if kind is None or type(m) is kind]


def persists(record) -> list[Persist]:
    return [record.persist] if record.persist is not None else []


def replies(record) -> list[Reply]:
    return list(record.replies)


def applied(record) -> list[int]:
    return [entry.index for entry in record.committed]


def trace_names(record) -> list[str]:
    return [t.name for t in record.traces]


# --------------------------------------------------------------------------- driving a core


def persist(core: RaftCore):
    """Complete every write the core asked for so far."""
    return core.step(Persisted(core.persist_seq))


def fire_election_timeout(core: RaftCore):
    """Tick until the election timer fires (it is below 2T by §5.2); returns that step's record."""
    for _ in range(2 * core.options.election_ticks):
        effects = core.step(Tick())
        if "Timeout" in trace_names(effects):
            return effects
    raise AssertionError(f"n{core.id} did not time out within {2 * core.options.election_ticks} ticks")


def make_leader(node_id: int = 1, voters=(1, 2, 3), *, terms=(), term=None, options=PLAIN, seed=0) -> RaftCore:
    """A core just elected leader: its no-op is appended but not yet persisted or replicated."""
    if term is None:
        term = terms[-1] if terms else 0
    core = make(node_id, voters, term=term, terms=terms, options=options, seed=seed)
    fire_election_timeout(core)
    for peer in sorted(voters):  # pre-vote (thesis §9.6), if enabled: grants for term+1
        if core.role != PRE_CANDIDATE:
            break
        if peer != node_id:
            core.step(RequestVoteResponse(core.current_term + 1, peer, node_id, True, True))
    persist(core)
    for peer in sorted(voters):
        if core.role == LEADER:
            break
        if peer != node_id:
            core.step(RequestVoteResponse(core.current_term, peer, node_id, True))
    assert core.role == LEADER, core.status()
    return core


def ack(core: RaftCore, peer: int, match: int, *, read_round: int = 0):
    """Peer's successful AppendEntries response: its log matches ours up to `match`."""
    return core.step(AppendEntriesResponse(core.current_term, peer, core.id, True, match, read_round=read_round))


def settled_leader(node_id: int = 1, voters=(1, 2, 3), **kwargs) -> RaftCore:
    """A leader whose no-op is durable, stored by every follower and committed."""
    core = make_leader(node_id, voters, **kwargs)
    persist(core)
    for peer in sorted(voters):
        if peer != node_id:
            ack(core, peer, core.log.last_index)
    assert core.commit_index == core.log.last_index
    return core


def append(core: RaftCore, *, term: int, leader: int = 1, prev=(0, 0), entries=(), commit: int = 0):
    """An AppendEntries from `leader` carrying entries given as (index, term) pairs."""
    batch = tuple(Entry(t, i) for i, t in entries)
    return core.step(AppendEntriesRequest(term, leader, core.id, prev[0], prev[1], batch, commit))


def follower_with_leader(node_id: int = 2, *, term: int = 1, leader: int = 1, terms=(), options=PLAIN) -> RaftCore:
    """A follower that has heard from `leader` in `term` and stores a log of `terms`."""
    core = make(node_id, term=term, options=options)
    if terms:
        append(core, term=term, leader=leader, entries=list(enumerate(terms, start=1)))
        persist(core)
    else:
        append(core, term=term, leader=leader)
    assert core.role == FOLLOWER and core.leader_id == leader
    return core
