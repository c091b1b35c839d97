"""CoreView: what the node knows of its Raft core, learnt from the step records.

The shell changes the core only through `step` and learns the leader, role, term,
commit index and configuration from each record's `soft` and `config` parts
(raft/record.py): the first sink of every step hands the record to `learn`, and
everything in the node that asks "am I the leader?", "who leads?", "what is the
configuration?" reads it here, never the core's fields.

A few questions have no place in a record because they change every step and only
a rare decision needs them (a membership change, a leadership hand-off, a snapshot
to take or to screen).  They are the read-only queries below, asked between steps:
the leader's match index of each peer, the election timer, and the term of a
log index.
"""
from __future__ import annotations

from ..raft.config import Configuration
from ..raft.record import ConfigState, SoftState, StepRecord
from ..raft.roles import LEADER, Role


class CoreView:
    __slots__ = ("soft", "config_state", "_core")

    def __init__(self, core) -> None:
        self._core = core
        self.soft: SoftState = core.soft_state
        self.config_state: ConfigState = core.config_state

    def learn(self, record: StepRecord) -> bool:
        """Take a step's soft state and configuration; True if the configuration changed."""
        self.soft = record.soft
        if record.config is self.config_state:
            return False
        self.config_state = record.config
        return True

    # ------------------------------------------------------------------ soft state

    def is_leader(self) -> bool:
        return self.soft.role is LEADER

    @property
    def leader_id(self) -> int | None:
        return self.soft.leader_id

    @property
    def role(self) -> Role:
        return self.soft.role

    @property
    def current_term(self) -> int:
        return self.soft.term

    @property
    def commit_index(self) -> int:
        return self.soft.commit_index

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> Configuration:
        """The latest configuration in the log, committed or not (thesis §4.1)."""
        return self.config_state.config

    @property
    def pending_config_index(self) -> int:
        return self.config_state.pending_index

    def config_at(self, index: int) -> Configuration:
        return self.config_state.config_at(index)

    # ------------------------------------------------------------------ read-only queries

    def match_index(self, peer: int) -> int | None:
        """How far `peer`'s log matches the leader's; None unless this node leads and
        `peer` is a member."""
        return self._core.match_index(peer)

    def match_indexes(self) -> dict[int, int]:
        """{peer: match index} of every other member while this node leads; else empty."""
        return self._core.match_indexes()

    def election_timer(self) -> tuple[int, int]:
        """(ticks since the election timer was reset, the randomized timeout)."""
        return self._core.election_timer()

    def term_at(self, index: int) -> int | None:
        """The term of the log entry at `index` (None: not in the log, or compacted
        beyond the snapshot's own index)."""
        return self._core.log.term_at(index)

    def log_matches(self, index: int, term: int) -> bool:
        """Whether the log holds an entry at `index` with `term` (or its snapshot ends there)."""
        return self._core.log.matches(index, term)

    @property
    def log_start(self) -> int:
        """The index the log starts after (its snapshot's)."""
        return self._core.log.snapshot_index
