"""Cores that break one rule of Raft on purpose, to show that the simulator notices."""
from abcd.raft.core import RaftCore


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
