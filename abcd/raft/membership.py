"""Membership changes, one server at a time (thesis ch. 4).

A configuration takes effect as soon as its entry is in the log (§4.1), so it is
recomputed whenever the log grows a config entry or loses a suffix.  A leader
accepts a new change only once the previous one is committed.  A leader that is
removed keeps leading until the entry removing it commits, then steps down
without counting itself in majorities meanwhile (§4.2.2).
"""
from __future__ import annotations

from .config import Configuration, decode_config, encode_config, single_server_change_error
from .effects import Accepted, Rejected
from .messages import ENTRY_CONFIG, Entry, ProposeConfig
from .progress import Progress
from .roles import LEADER
from .state import RaftState


class MembershipMixin(RaftState):
    def rebuild_config(self) -> None:
        log = self.log
        entries = [(i, decode_config(log.entry(i).data)) for i in log.indexes_of_kind(ENTRY_CONFIG)]
        self.config_entries = entries
        config = entries[-1][1] if entries else self.base_config
        if config != self.config:
            self.config = config
            self.trace("ConfigChange", voters=sorted(config.voters), learners=sorted(config.learners))
            if self.role == LEADER:
                self._sync_progress()

    def config_at(self, index: int) -> Configuration:
        config = self.base_config
        for entry_index, c in self.config_entries:
            if entry_index > index:
                break
            config = c
        return config

    def _sync_progress(self) -> None:
        members = self.config.members
        for peer in list(self.progress):
            if peer not in members:
                del self.progress[peer]
        for peer in members:
            if peer != self.id and peer not in self.progress:
                self.progress[peer] = Progress(self.log.last_index + 1, self.options.max_inflight)
                self.send_append(peer)

    def handle_propose_config(self, event: ProposeConfig) -> None:
        if self.role != LEADER:
            self.not_leader(event.tag)
            return
        if self.pending_config_index > self.commit_index:
            self.reply(event.tag, Rejected("a configuration change is already in progress; retry once it commits"))
            return
        new = Configuration(frozenset(event.voters), frozenset(event.learners))
        error = single_server_change_error(self.config, new)
        if error:
            self.reply(event.tag, Rejected(error))
            return
        index = self.log.last_index + 1
        self.append_local([Entry(self.current_term, index, encode_config(new, event.context), ENTRY_CONFIG)])
        self.pending_config_index = index
        self.reply(event.tag, Accepted(term=self.current_term, first_index=index, last_index=index))
        self.broadcast_append()
        if self.maybe_commit():
            self.broadcast_commit()

    def step_down_if_removed(self) -> None:
        if self.role == LEADER and self.id not in self.config.voters:
            last_config_index = self.config_entries[-1][0] if self.config_entries else 0
            if self.commit_index >= last_config_index:
                self.trace("LeaderRemoved")
                self.become_follower(self.current_term, None)
