"""Cores that break one rule of Raft on purpose, to show that the simulator notices.

The tests run them to show that each check can fail; `python -m abcd.sim --broken NAME`
runs one (BROKEN maps the names), and with `--record` the dashboard replays the run up
to the step where the rule breaks.
"""
from __future__ import annotations

from ..raft.core import RaftCore
from ..raft.messages import InstallSnapshotResponse


class GrantEveryVote(RaftCore):
    """Figure 2 says one vote per term; this one votes for every candidate."""

    def can_grant_vote(self, m):
        return True


class CommitOldTerms(RaftCore):
    """§5.4.2 forbids committing an older term's entry by counting replicas (Figure 8)."""

    def may_commit(self, index):
        return True


class SkipPersistGate(RaftCore):
    """Thesis §3.8: never promise what is not yet durable.  This one sends at once."""

    def send_after_persist(self, m):
        self.send(m)


class NeverSendsSnapshot(RaftCore):
    """Figure 13: a follower that needs entries the leader compacted gets the snapshot.
    This leader waits for the entries forever instead."""

    def send_snapshot(self, peer):
        pass


class AcksSnapshotBeforeDurable(RaftCore):
    """Thesis §3.8: an InstallSnapshot answer promises durable state; this one is sent
    before the snapshot (or the log it vouches for) is on disk."""

    def send_after_persist(self, m):
        if type(m) is InstallSnapshotResponse:
            self.send(m)
        else:
            super().send_after_persist(m)


class ForgetsRestore(RaftCore):
    """Figure 13, receiver 8: reset the state machine from the snapshot.  This one
    replaces its log but leaves the state machine where it was."""

    def _flush(self):
        record = super()._flush()
        record.restore = None
        return record


class InstallsOverItsCommittedLog(RaftCore):
    """A snapshot that the follower's commit index covers must change nothing; this one
    discards the log and restores the snapshot anyway, moving its state machine back."""

    def handle_install_snapshot_request(self, m):
        if m.last_included_index > self.log.snapshot_index:
            self.leader_id = m.source
            self.election_elapsed = 0
            self._install_snapshot(m)
            self.send_after_persist(InstallSnapshotResponse(self.current_term, self.id, m.source, m.last_included_index))
        else:
            super().handle_install_snapshot_request(m)


# Every broken core by its class name, for --broken.
BROKEN: dict[str, type[RaftCore]] = {
    core.__name__: core
    for core in (
        GrantEveryVote,
        CommitOldTerms,
        SkipPersistGate,
        NeverSendsSnapshot,
        AcksSnapshotBeforeDurable,
        ForgetsRestore,
        InstallsOverItsCommittedLog,
    )
}

# For each core that the simulator catches in a short run: the flags of a seed that
# breaks its rule within 1,000 events (tests/sim/test_record.py checks that each
# still does).  CommitOldTerms needs the Figure 8 interleaving, which random runs almost
# never hit (figure8.py stages it: --scenario figure8); NeverSendsSnapshot breaks liveness, not
# safety, so a recorded run shows a follower that never catches up, not a violation.
EXAMPLES: dict[str, str] = {
    "GrantEveryVote": "--nodes 5 --seed 90",
    "SkipPersistGate": "--nodes 3 --seed 11",
    "AcksSnapshotBeforeDurable": "--nodes 3 --seed 27 --snapshot-every 3",
    "ForgetsRestore": "--nodes 3 --seed 27 --snapshot-every 3",
    "InstallsOverItsCommittedLog": "--nodes 3 --seed 5 --snapshot-every 3",
}
