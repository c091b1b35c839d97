"""A whole Raft cluster in one process, in virtual time.

Every node is a RaftCore driven by the same loop: a priority queue of timed events
(ticks, message deliveries, disk completions, client actions, faults).  A node's
storage is modelled as a durable part and a queue of writes in flight: a Persist
becomes durable only when its simulated fsync completes, and a crash keeps a random
prefix of the writes in flight (some may have reached the disk before the crash).
A restart builds a fresh core from what is durable, exactly as a real node would.

Snapshots (when a SnapshotPolicy is given): every K applied entries a node saves its
state machine with the index, term and configuration it reflects, then compacts its
log (the core's and the durable one) up to that index or a few entries before it.
A leader's outgoing InstallSnapshot gets the node's newest snapshot filled in, as a
real node's shell does; a follower's Persist with a snapshot replaces its durable
log, and Restore replaces its state machine.  A restart starts from the snapshot
and the durable log after it.

After every event the SafetyChecker verifies Raft's safety properties.

An observer (record.RunRecorder, for `--record`) may watch a run: it hears of every
event before it is handled, every message sent with its fate on the network, every
client call, and every Trace through the tracer.  Without one, each of those hooks
costs one test of `None`, so the seeds the tests run stay as fast.
"""
from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field, replace

from ..raft.core import Options, RaftCore
from ..raft.effects import Accepted, NotLeader, Persist, ReadReady, Rejected, Trace
from ..raft.record import StepRecord
from ..raft.messages import (
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    PeerUnreachable,
    Persisted,
    Propose,
    ReadIndex,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    SnapshotTaken,
    Tick,
)
from .invariants import InvariantViolation, LogMirror, SafetyChecker
from .network import Network, NetworkFaults

TICK_MS = 10.0
_PROMISES = (AppendEntriesResponse, InstallSnapshotResponse, RequestVoteResponse, RequestVoteRequest)


@dataclass
class SnapshotPolicy:
    """When the nodes of one run snapshot their state machines and compact their logs."""

    every: int  # applied entries between two snapshots of one node
    # Compact to the snapshot's index, or (half the time, if > 0) up to this many
    # entries before it, keeping entries for followers that are only a little behind.
    max_lag: int
    rng: random.Random

    def compact_index(self, snapshot_index: int) -> int:
        if self.max_lag and self.rng.random() < 0.5:
            return max(0, snapshot_index - self.rng.randint(1, self.max_lag))
        return snapshot_index


@dataclass
class SimNode:
    id: int
    core: RaftCore
    up: bool = True
    epoch: int = 0  # bumped at every crash, so that stale timers of a past life are ignored
    durable_hard_state: HardState = field(default_factory=HardState)
    # The durable snapshot (None: none yet) and the durable log, which holds the
    # entries from log_start + 1 on (log_start <= the snapshot's index).
    snapshot: Snapshot | None = None
    snapshot_data: bytes = b""
    log_start: int = 0
    durable_log: list = field(default_factory=list)
    in_flight: list = field(default_factory=list)  # Persist effects written but not yet fsynced
    disk_free_at: float = 0.0
    state: dict = field(default_factory=dict)  # the state machine: key -> value
    last_applied: int = 0


def encode_state(state: dict) -> bytes:
    return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()


def decode_state(data: bytes) -> dict:
    return json.loads(data) if data else {}


def write_durable(node: SimNode, p: Persist) -> None:
    """One Persist reaches the disk, in the order its docstring gives."""
    if p.snapshot is not None:
        node.snapshot, node.snapshot_data = p.snapshot, p.snapshot_data
        node.durable_log = []
        node.log_start = p.snapshot.last_included_index
    if p.hard_state is not None:
        node.durable_hard_state = p.hard_state
    if p.entries:
        start = p.entries[0].index
        if start <= node.log_start:
            raise InvariantViolation(
                f"node {node.id} wrote entry {start}, compacted into its snapshot",
                invariant="Log Continuity",
                members=(node.id,),
            )
        del node.durable_log[start - node.log_start - 1 :]
        if node.log_start + len(node.durable_log) != start - 1:
            raise InvariantViolation(
                f"node {node.id} wrote entry {start} after a gap in its durable log",
                invariant="Log Continuity",
                members=(node.id,),
            )
        node.durable_log.extend(p.entries)


def durable_entries_after_snapshot(node: SimNode) -> list:
    """What a restart reads back: the durable log after the durable snapshot."""
    skip = (node.snapshot.last_included_index if node.snapshot is not None else 0) - node.log_start
    return node.durable_log[skip:]


class Cluster:
    def __init__(
        self,
        n: int,
        seed: int,
        *,
        faults: NetworkFaults | None = None,
        core_factory=RaftCore,
        options: Options = Options(),
        disk_delay: tuple[float, float] = (0.2, 3.0),
        tracer=None,
        snapshots: SnapshotPolicy | None = None,
        observer=None,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.ids = list(range(1, n + 1))
        self.now = 0.0
        self.events_processed = 0
        self.queue: list = []
        self._seq = 0
        self.network = Network(random.Random(self.rng.getrandbits(64)), faults or NetworkFaults())
        self.core_factory = core_factory
        self.options = options.validate()
        self.disk_delay = disk_delay
        self.tracer = tracer
        self.checker = SafetyChecker()
        self.snapshots = snapshots
        # index -> the state-machine bytes of every snapshot taken there (all must agree).
        self.snapshot_states: dict[int, bytes] = {}
        self.stats = {"snapshots_taken": 0, "snapshots_sent": 0, "snapshots_delivered": 0, "snapshots_installed": 0}
        self.nodes: dict[int, SimNode] = {}
        self.client = None  # set by attach_client
        for i in self.ids:
            self.nodes[i] = SimNode(i, self._new_core(i, HardState(), []))
            self.checker.mirrors[i] = LogMirror()
            # Ticks start at a random phase so that nodes are not in lock step.
            self.schedule(self.rng.uniform(0, TICK_MS), "tick", i, 0)
        self.observer = observer
        if observer is not None:
            observer.attach(self)

    def _new_core(self, node_id: int, hard_state: HardState, entries, snapshot: Snapshot | None = None) -> RaftCore:
        return self.core_factory(
            node_id,
            voters=self.ids,
            hard_state=hard_state,
            entries=entries,
            snapshot=snapshot,
            seed=self.rng.getrandbits(32),
            options=self.options,
        )

    # ------------------------------------------------------------------ the event loop

    def schedule(self, delay: float, kind: str, *args) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (self.now + delay, self._seq, kind, args))

    def run(self, *, max_events: int | None = None, until: float | None = None) -> None:
        done = 0
        observer = self.observer
        while self.queue and (max_events is None or done < max_events):
            if until is not None and self.queue[0][0] > until:
                self.now = until
                return
            when, _, kind, args = heapq.heappop(self.queue)
            self.now = when
            if observer is not None:
                observer.on_event(kind, args)
            getattr(self, "_on_" + kind)(*args)
            done += 1
            self.events_processed += 1

    def _on_tick(self, node_id: int, epoch: int) -> None:
        node = self.nodes[node_id]
        if not node.up or epoch != node.epoch:
            return
        self.schedule(TICK_MS, "tick", node_id, epoch)
        self.step(node, Tick())

    def _on_deliver(self, message) -> None:
        node = self.nodes[message.dest]
        if node.up:
            if type(message) is InstallSnapshotRequest:
                self.stats["snapshots_delivered"] += 1
            self.step(node, message)

    def _on_disk(self, node_id: int, epoch: int, seq: int) -> None:
        node = self.nodes[node_id]
        if not node.up or epoch != node.epoch:
            return
        while node.in_flight and node.in_flight[0].seq <= seq:
            write_durable(node, node.in_flight.pop(0))
        self.step(node, Persisted(seq))

    def _on_unreachable(self, node_id: int, peer: int) -> None:
        node = self.nodes[node_id]
        if node.up:
            self.step(node, PeerUnreachable(peer))

    def _on_call(self, fn, *args) -> None:
        fn(*args)

    # ------------------------------------------------------------------ one step of one node

    def step(self, node: SimNode, event) -> StepRecord:
        record = node.core.step(event)
        self.execute(node, record)
        if self.snapshots is not None:
            self.maybe_snapshot(node)
        return record

    def execute(self, node: SimNode, record: StepRecord) -> None:
        """Carry out one step's record, part by part in the node's order (record.py)."""
        checker = self.checker
        # Traced first, so that a recorded run shows the step that broke a rule.
        for trace in record.traces:
            if self.tracer is not None:
                self.tracer(self.now, node.id, trace)
            if trace.name == "BecomeLeader":
                checker.check_leader(node.id, trace.fields["term"])
        for m in record.messages:
            if type(m) in _PROMISES:
                checker.check_promise(m, node)
            elif type(m) is InstallSnapshotRequest:
                m = self.fill_snapshot(node, m)
            delays = self.network.deliveries(m.source, m.dest)
            if self.observer is not None:
                self.observer.on_send(m, delays)
            for delay in delays:
                self.schedule(delay, "deliver", m)
        persist = record.persist
        if persist is not None:
            node.in_flight.append(persist)
            start = max(self.now, node.disk_free_at)
            node.disk_free_at = start + self.rng.uniform(*self.disk_delay)
            self.schedule(node.disk_free_at - self.now, "disk", node.id, node.epoch, persist.seq)
            if persist.snapshot is not None:
                checker.install_snapshot(node.id, persist.snapshot)
            if persist.entries:
                checker.replace_entries(node.id, persist.entries)
        if record.replies and self.client is not None:
            for reply in record.replies:
                self.client.on_reply(node, reply.tag, reply.result)
        if record.restore is not None:
            self.restore(node, record.restore.snapshot, record.restore.data)
        if record.committed:
            checker.check_apply(node.id, record.committed)
            self.apply(node, record.committed)
        soft = record.soft
        if soft.commit_index:
            checker.check_commit(node.id, soft.commit_index, soft.term)

    def apply(self, node: SimNode, entries) -> None:
        for e in entries:
            if e.index != node.last_applied + 1:
                raise InvariantViolation(
                    f"node {node.id} applied index {e.index} after {node.last_applied}",
                    invariant="Applied In Order",
                    members=(node.id,),
                )
            node.last_applied = e.index
            if e.data and not e.kind:
                key, _, value = e.data.decode().partition("=")
                node.state[key] = value
            if self.client is not None:
                self.client.on_apply(node, e)

    # ------------------------------------------------------------------ snapshots

    def maybe_snapshot(self, node: SimNode) -> None:
        """Every `every` applied entries: save the state machine, then compact the log."""
        if not node.up:
            return
        taken = node.snapshot.last_included_index if node.snapshot is not None else 0
        if node.last_applied - taken < self.snapshots.every:
            return
        if any(p.snapshot is not None for p in node.in_flight):
            # The state comes from a leader's snapshot whose Persist is not durable yet:
            # saved now, a crash could pair it with the old log after it.  Wait for it.
            return
        core = node.core
        index = node.last_applied
        config = core.config_at(index)
        snapshot = Snapshot(index, core.log.term_at(index), config.voters, config.learners)
        data = encode_state(node.state)
        seen = self.snapshot_states.setdefault(index, data)
        if seen != data:
            raise InvariantViolation(
                f"State Machine Safety: node {node.id}'s snapshot at index {index} differs from another node's",
                invariant="State Machine Safety",
                members=(node.id,),
            )
        self.checker.check_snapshot(node.id, snapshot)
        # Durable at once (a real node fsyncs the file before it compacts anything).
        node.snapshot, node.snapshot_data = snapshot, data
        self.stats["snapshots_taken"] += 1
        compact_to = max(core.log.snapshot_index, self.snapshots.compact_index(index))
        self.execute(node, core.step(SnapshotTaken(index, compact_to)))
        # The durable log drops the same prefix (the WAL's compaction).
        drop = min(compact_to - node.log_start, len(node.durable_log))
        if drop > 0:
            del node.durable_log[:drop]
            node.log_start += drop
        if self.tracer is not None:
            self.tracer(self.now, node.id, Trace("SnapshotTaken", {"index": index, "compacted_to": compact_to}))

    def fill_snapshot(self, node: SimNode, m: InstallSnapshotRequest) -> InstallSnapshotRequest:
        """What a real node's shell does before an InstallSnapshot leaves: put in its
        newest snapshot, at or after the index the core named, never past its commit."""
        snapshot = node.snapshot
        have = snapshot.last_included_index if snapshot is not None else 0
        if have < m.last_included_index or have > node.core.commit_index:
            raise InvariantViolation(
                f"node {node.id} asked to send a snapshot at {m.last_included_index} (commit index "
                f"{node.core.commit_index}) but its newest snapshot is at {have}",
                invariant="Snapshot Available",
                members=(node.id,),
            )
        self.stats["snapshots_sent"] += 1
        return replace(
            m,
            last_included_index=snapshot.last_included_index,
            last_included_term=snapshot.last_included_term,
            voters=snapshot.voters,
            learners=snapshot.learners,
            data=node.snapshot_data,
        )

    def restore(self, node: SimNode, snapshot: Snapshot, data: bytes) -> None:
        index = snapshot.last_included_index
        if self.snapshot_states.get(index) != data:
            raise InvariantViolation(
                f"node {node.id} restored state at index {index} that no node saved there",
                invariant="State Machine Safety",
                members=(node.id,),
            )
        if index <= node.last_applied:
            raise InvariantViolation(
                f"node {node.id} restored a snapshot at {index}, having applied {node.last_applied}",
                invariant="State Machine Safety",
                members=(node.id,),
            )
        node.state = decode_state(data)
        node.last_applied = index
        self.stats["snapshots_installed"] += 1
        if self.client is not None:
            self.client.on_restore(node, index)

    # ------------------------------------------------------------------ faults

    def partition(self, side: set[int], *, one_way: bool = False) -> None:
        """Split the network in two: `side` and the rest (replacing any earlier cut).
        One way: only the messages from `side` to the rest are lost."""
        self.network.heal()
        self.network.partition(side, self.ids, one_way=one_way)
        if self.tracer is not None:
            groups = [sorted(side), [i for i in self.ids if i not in side]]
            self.tracer(self.now, None, Trace("Partition", {"groups": groups, "one_way": one_way}))

    def heal(self) -> None:
        """Every link works again."""
        if not self.network.cut:
            return
        self.network.heal()
        if self.tracer is not None:
            self.tracer(self.now, None, Trace("Heal", {}))

    def crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if not node.up:
            return
        node.up = False
        node.epoch += 1
        # Writes in flight may or may not have reached the disk: keep a random prefix.
        keep = self.rng.randint(0, len(node.in_flight))
        for p in node.in_flight[:keep]:
            write_durable(node, p)
        node.in_flight = []
        self.checker.reset_mirror(node_id, node.snapshot, durable_entries_after_snapshot(node))
        # A dead process's sockets reset: peers that had a connection from it notice.
        for peer in self.ids:
            if peer != node_id and (node_id, peer) not in self.network.cut:
                self.schedule(self.rng.uniform(0.1, 2.0), "unreachable", peer, node_id)
        if self.tracer is not None:
            self.tracer(self.now, node_id, Trace("Crash", {"kept_writes": keep}))
        if self.client is not None:
            self.client.on_crash(node)

    def restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.up:
            return
        node.up = True
        entries = durable_entries_after_snapshot(node)
        node.core = self._new_core(node_id, node.durable_hard_state, entries, node.snapshot)
        node.state = decode_state(node.snapshot_data)
        node.last_applied = node.snapshot.last_included_index if node.snapshot is not None else 0
        node.disk_free_at = self.now
        self.checker.reset_mirror(node_id, node.snapshot, entries)
        self.schedule(self.rng.uniform(0, TICK_MS), "tick", node_id, node.epoch)
        if self.tracer is not None:
            self.tracer(self.now, node_id, Trace("Restart", {"term": node.durable_hard_state.current_term}))

    def leader(self) -> SimNode | None:
        """The leader of the highest term among live nodes, if any."""
        best = None
        for node in self.nodes.values():
            if node.up and node.core.is_leader():
                if best is None or node.core.current_term > best.core.current_term:
                    best = node
        return best

    def propose(self, node_id: int, tag: int, commands: tuple[bytes, ...]) -> None:
        node = self.nodes[node_id]
        if self.observer is not None:
            self.observer.on_client(node_id, "propose", commands)
        if node.up:
            self.step(node, Propose(tag, commands))

    def read_index(self, node_id: int, tag: int) -> None:
        node = self.nodes[node_id]
        if self.observer is not None:
            self.observer.on_client(node_id, "read", ())
        if node.up:
            self.step(node, ReadIndex(tag))


__all__ = [
    "Cluster",
    "SimNode",
    "SnapshotPolicy",
    "NetworkFaults",
    "InvariantViolation",
    "Accepted",
    "NotLeader",
    "ReadReady",
    "Rejected",
    "Entry",
]
