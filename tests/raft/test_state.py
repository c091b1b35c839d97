"""RaftState declares every field of a RaftCore: a field set in __init__ or by a
mixin but not declared there would have no stated type or invariant."""
from abcd.raft.core import RaftCore
from abcd.raft.messages import Propose, ReadIndex
from abcd.raft.state import RaftState

from .cores import settled_leader


def test_every_field_of_a_working_leader_is_declared_in_raft_state():
    core = settled_leader()
    core.step(Propose(1, (b"x",)))
    core.step(ReadIndex(2))
    undeclared = set(vars(core)) - set(RaftState.__annotations__)
    assert not undeclared, f"declare these in abcd/raft/state.py: {sorted(undeclared)}"


def test_every_declared_field_exists_on_a_new_core():
    missing = set(RaftState.__annotations__) - set(vars(RaftCore(1, voters=(1, 2, 3))))
    assert not missing, f"declared in RaftState but never set: {sorted(missing)}"
