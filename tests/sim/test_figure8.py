import pytest

from abcd.raft.core import RaftCore
from abcd.sim.broken import CommitOldTerms
from abcd.sim.figure8 import stage_figure_8
from abcd.sim.invariants import InvariantViolation


def test_figure_8_is_safe_with_the_commitment_rule():
    """§5.4.2: the staged Figure 8 interleaving commits nothing that is later lost."""
    c = stage_figure_8(RaftCore)
    assert c.checker.max_committed > 0


def test_committing_old_terms_by_counting_breaks_figure_8():
    with pytest.raises(InvariantViolation, match="committed"):
        stage_figure_8(CommitOldTerms)
