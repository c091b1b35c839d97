"""InstallSnapshot (Figure 13 of the paper; thesis §5.1) and log compaction.

The shell snapshots its state machine and steps SnapshotTaken; the core then drops
its log up to the point the shell names, and from then on the log starts after a
snapshot.  A follower that needs an entry the leader no longer holds
gets the leader's snapshot instead.

The core never holds state-machine bytes on the leader side: it names the start of
its log in an InstallSnapshotRequest with empty `data`, and the shell fills in its
newest snapshot, which may be newer than the one named.  So an answer may report a
match_index beyond what the leader asked about; every answer only ever raises what
the leader knows.

A follower answers with the index through which it now holds the leader's state.
Like an AppendEntries acknowledgement, that is a promise about durable state, so it
waits for the Persisted covering everything written so far (thesis §3.8).
"""
from __future__ import annotations

from .config import Configuration
from .messages import InstallSnapshotRequest, InstallSnapshotResponse, Snapshot, SnapshotTaken
from .progress import REPLICATE, SNAPSHOT
from .roles import CANDIDATE, LEADER, PRE_CANDIDATE
from .state import RaftState


class SnapshotMixin(RaftState):
    # ------------------------------------------------------------------ leader side

    def send_snapshot(self, peer: int) -> None:
        """The entries `peer` needs were compacted away: send the snapshot our log starts
        after.  No AppendEntries carry entries to it until this is answered or presumed
        lost (etcd's snapshot state), so one slow transfer is not sent over and over."""
        pr = self.progress[peer]
        log = self.log
        pr.become_snapshot(log.snapshot_index, self.tick_count)
        self.trace(
            "SendInstallSnapshot",
            peer=peer,
            last_included_index=log.snapshot_index,
            last_included_term=log.snapshot_term,
        )
        # base_config is the configuration as of log.snapshot_index (compact keeps it so).
        self.send(
            InstallSnapshotRequest(
                term=self.current_term,
                source=self.id,
                dest=peer,
                last_included_index=log.snapshot_index,
                last_included_term=log.snapshot_term,
                voters=self.base_config.voters,
                learners=self.base_config.learners,
            )
        )

    def handle_install_snapshot_response(self, m: InstallSnapshotResponse) -> None:
        pr = self.progress.get(m.source)
        if pr is None:
            return
        pr.recent_active = True
        news = pr.update(m.match_index)
        if pr.state == SNAPSHOT and pr.match_index < pr.pending_snapshot:
            # Answers an earlier InstallSnapshot (a duplicate or a late one): the latest
            # is still on its way; only what the follower now holds changes.
            if news:
                self.advance_commit()
            return
        self.trace("SnapshotAccepted", peer=m.source, match_index=pr.match_index)
        if pr.state != REPLICATE:
            pr.become_replicate()  # next_index = match_index + 1
        if self.advance_commit() and self.role != LEADER:
            return  # the commit removed us from the configuration: we stepped down
        while self.send_append(m.source, allow_empty=False):
            pass
        self.maybe_send_timeout_now(m.source)

    # ------------------------------------------------------------------ follower side

    def handle_install_snapshot_request(self, m: InstallSnapshotRequest) -> None:
        # The same term rules as AppendEntries: the sender leads our term (_receive
        # adopted a newer term and this leader already).
        if self.role in (CANDIDATE, PRE_CANDIDATE):
            self.become_follower(self.current_term, m.source)
        self.leader_id = m.source
        self.election_elapsed = 0
        index, term = m.last_included_index, m.last_included_term
        if index <= self.commit_index or index <= self.log.snapshot_index:
            # We hold this state already.  Our log matches the leader's through our
            # commit index (Leader Completeness), which may be beyond the snapshot.
            self.trace("IgnoreSnapshot", leader=m.source, last_included_index=index, commit_index=self.commit_index)
            match = self.commit_index
        elif self.log.matches(index, term):
            # Figure 13 step 6: an entry with the snapshot's last index and term is in
            # our log, so our log holds the snapshot's prefix (Log Matching).  Keep the
            # entries after it; the committed ones are applied the usual way.
            self.trace("RetainLog", leader=m.source, last_included_index=index, last_included_term=term)
            self.commit_index = index
            self.on_commit_advanced()
            match = index
        else:
            self._install_snapshot(m)
            match = index
        self.send_after_persist(
            InstallSnapshotResponse(term=self.current_term, source=self.id, dest=m.source, match_index=match)
        )

    def _install_snapshot(self, m: InstallSnapshotRequest) -> None:
        """Figure 13 steps 7-8: discard the entire log and reset the state machine from
        the snapshot.  Every entry we hold after last_included_index conflicts with the
        leader's log (had one matched, so would the entry at the snapshot's index)."""
        index, term = m.last_included_index, m.last_included_term
        snapshot = Snapshot(
            last_included_index=index,
            last_included_term=term,
            voters=frozenset(m.voters),
            learners=frozenset(m.learners),
        )
        self.trace("InstallSnapshot", leader=m.source, last_included_index=index, last_included_term=term)
        self.log.reset(index, term)
        # Entries of this step not yet handed to storage are gone with the log.
        self._unstable_entries = []
        self.base_config = Configuration(snapshot.voters, snapshot.learners)
        self.rebuild_config()  # no config entries remain: the snapshot's configuration rules
        self.commit_index = index
        self.last_applied = index
        # Nothing after `index` is left to be durable; indexes up to it are committed and
        # applied, so this value only counts again once the snapshot's own Persisted
        # raises it (unstable_persists records the snapshot as that write's last entry).
        self.stable_index = min(self.stable_index, index)
        self._installed_snapshot = (snapshot, m.data)

    # ------------------------------------------------------------------ compaction

    def handle_snapshot_taken(self, event: SnapshotTaken) -> None:
        """The shell saved a snapshot at event.index: drop the log up to event.compact_to."""
        if event.compact_to > event.index:
            raise ValueError(f"cannot compact to {event.compact_to}: the snapshot is at {event.index}")
        if event.index > self.last_applied:
            raise ValueError(f"a snapshot at {event.index} is beyond what was applied ({self.last_applied})")
        self.compact(event.compact_to)

    def compact(self, index: int) -> None:
        """The shell saved a snapshot of the state machine at or after `index`
        (<= last_applied): drop the log up to `index`.  Only through step
        (SnapshotTaken), like every change of the core's state.

        The shell may compact to an index behind its snapshot, keeping a few entries
        for followers that are only a little behind; an index at or below the start of
        the log (an installed snapshot already covers it) changes nothing.  A follower
        whose next entries are now gone gets a snapshot at its next AppendEntries.
        """
        if index > self.last_applied:
            raise ValueError(f"cannot compact to {index}: only {self.last_applied} applied")
        if index <= self.log.snapshot_index:
            return
        # snapshot_index < index <= last_applied <= last log index: the entry is here.
        term = self.log.term_at(index)
        # The configuration as of `index` becomes the base; later config entries stay.
        self.base_config = self.config_at(index)
        self.config_entries = [(i, c) for i, c in self.config_entries if i > index]
        self.log.compact(index, term)
