"""Options: the tunables of one Raft core (timeouts in ticks, message and flow limits).

Its own module so that the state every mixin shares (state.py) can name it without
importing the core that is built from those mixins.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Options:
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_message: int = 4096
    max_bytes_per_message: int = 1 << 20
    max_inflight: int = 64
    # Emit a Trace for every message sent and received (the simulator's --trace).
    trace_messages: bool = False
    # Start with the election timer advanced to election_ticks - 1, so the first
    # election comes after 1..election_ticks ticks instead of election_ticks..
    # 2*election_ticks (etcd's initial election tick advance).  For a member restarting
    # on its data: a cluster restarted whole elects a leader a timeout sooner, and a
    # member rejoining a live cluster disrupts nothing, since the members that hear
    # their leader refuse its pre-vote and the leader's heartbeat resets its timer.
    advance_first_election: bool = False

    def validate(self) -> "Options":
        """Raise ValueError naming the first option that cannot work; return self.

        The election timeout must be longer than the heartbeat interval (§5.6:
        broadcastTime << electionTimeout), or followers campaign between heartbeats.
        """
        if self.election_ticks < 1:
            raise ValueError(f"election_ticks must be at least 1, got {self.election_ticks}")
        if self.heartbeat_ticks < 1:
            raise ValueError(f"heartbeat_ticks must be at least 1, got {self.heartbeat_ticks}")
        if self.heartbeat_ticks >= self.election_ticks:
            raise ValueError(
                f"heartbeat_ticks ({self.heartbeat_ticks}) must be less than election_ticks ({self.election_ticks}): "
                "followers would time out between heartbeats"
            )
        if self.max_entries_per_message < 1:
            raise ValueError(f"max_entries_per_message must be at least 1, got {self.max_entries_per_message}")
        if self.max_bytes_per_message < 0:
            raise ValueError(
                f"max_bytes_per_message must be at least 0 (0: no byte limit), got {self.max_bytes_per_message}"
            )
        if self.max_inflight < 1:
            raise ValueError(f"max_inflight must be at least 1, got {self.max_inflight}")
        return self
