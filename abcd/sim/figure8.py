"""The situation of Figure 8 of the Raft paper, staged in the simulator.

Three nodes.  Leader L1 appends an entry that nobody else receives, then crashes.
L2 is elected, appends its no-op at the same index, reaches nobody, and crashes.
L1 comes back and is elected again; it replicates its old-term entry to the third
node B.  A correct leader does not count that replica to commit it (§5.4.2); a
broken one does, and when L2 returns it wins B's vote and overwrites the entry
everybody was told was committed.
"""
from __future__ import annotations

from ..raft.core import Options
from .cluster import Cluster
from .network import NetworkFaults


def isolate(cluster: Cluster, node_id: int) -> None:
    cluster.partition({node_id})


def stage_figure_8(core_factory, observer=None) -> Cluster:
    """Stage it with `core_factory`'s cores (an observer may record it: `--scenario
    figure8`).  A core that breaks §5.4.2 raises InvariantViolation."""
    state = {"phase": 0}

    def hook(now, node_id, trace):
        # L2 must reach nobody once elected; L1, re-elected, must be cut off right
        # after its first commit in the new term, before its no-op reaches B.
        if trace.name == "BecomeLeader" and state["phase"] == 1:
            isolate(c, node_id)
            state["l2"] = node_id
        if trace.name == "AdvanceCommitIndex" and state["phase"] == 2 and node_id == state["l1"]:
            isolate(c, node_id)
            state["phase"] = 3

    options = Options(max_entries_per_message=1)
    c = Cluster(3, 8, faults=NetworkFaults(), core_factory=core_factory, options=options, tracer=hook, observer=observer)
    c.run(until=600)
    l1 = c.leader().id
    state["l1"] = l1
    isolate(c, l1)
    c.propose(l1, 1, (b"x=from-L1",))
    c.run(until=c.now + 20)  # durable on L1 only
    c.crash(l1)
    c.heal()
    state["phase"] = 1
    c.run(until=c.now + 600)
    l2 = state["l2"]
    c.crash(l2)
    c.heal()
    state["phase"] = 2
    c.restart(l1)
    c.run(until=c.now + 1500)
    c.crash(l1)
    c.heal()
    c.restart(l2)
    c.run(until=c.now + 1500)
    return c
