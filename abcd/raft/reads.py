"""Linearizable reads without writing to the log: ReadIndex (§6.4).

The leader records its commit index as the read index, then confirms it is still
the leader by hearing from a majority in a heartbeat round started after the read
arrived.  Reads that arrive in the same step share one round.  A leader that has
not yet committed an entry of its own term does not know the true commit index
yet (§6.4 step 1), so reads wait for its no-op to commit.
"""
from __future__ import annotations

from .effects import ReadReady
from .messages import ReadIndex
from .roles import LEADER
from .state import RaftState


class ReadsMixin(RaftState):
    def _init_reads(self) -> None:
        # The fields are declared in state.py.
        self.read_round = 0
        self.read_rounds = {}
        self.reads_waiting_commit = []
        self.open_read_round = 0

    def handle_read_index(self, event: ReadIndex) -> None:
        if self.role != LEADER:
            self.not_leader(event.tag)
            return
        if self.log.term_at(self.commit_index) != self.current_term:
            self.reads_waiting_commit.append(event.tag)
            return
        self._start_or_join_round([event.tag])

    def _start_or_join_round(self, tags: list[int]) -> None:
        if self.config.voters == {self.id}:
            for tag in tags:
                self.reply(tag, ReadReady(self.commit_index))
            return
        if self.open_read_round:
            self.read_rounds[self.open_read_round][1].extend(tags)
            return
        self.read_round += 1
        self.open_read_round = self.read_round
        self.read_rounds[self.read_round] = (self.commit_index, list(tags), {self.id})
        self.broadcast_heartbeat(self.read_round)

    def ack_read_round(self, peer: int, round_id: int) -> None:
        if not self.read_rounds or peer not in self.config.voters:
            return
        confirmed = 0
        for rid, (_, _, acks) in self.read_rounds.items():
            if rid > round_id:
                break
            acks.add(peer)
            if self.config.has_quorum(acks):
                confirmed = rid
        if confirmed:
            # Leadership confirmed at round `confirmed` is also confirmed for every
            # earlier round of this term.
            for rid in [r for r in self.read_rounds if r <= confirmed]:
                read_index, tags, _ = self.read_rounds.pop(rid)
                for tag in tags:
                    self.reply(tag, ReadReady(read_index))

    def release_reads_waiting_commit(self) -> None:
        if self.reads_waiting_commit and self.log.term_at(self.commit_index) == self.current_term:
            tags, self.reads_waiting_commit = self.reads_waiting_commit, []
            self._start_or_join_round(tags)

    def fail_pending_reads(self) -> None:
        tags = list(self.reads_waiting_commit)
        for _, round_tags, _ in self.read_rounds.values():
            tags.extend(round_tags)
        self.reads_waiting_commit = []
        self.read_rounds = {}
        self.open_read_round = 0
        for tag in tags:
            self.not_leader(tag)
