"""Simulated clients: they write and read a few keys and check what they see.

A write is acknowledged when the node that accepted it applies it (a real node
answers its client then).  A linearizable read (ReadIndex) must return a read
index at least as high as every write acknowledged before the read was issued;
the value it then returns is checked by the linearizability checker at the end.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..raft.effects import Accepted, NotLeader, ReadReady
from .invariants import InvariantViolation


@dataclass
class PendingWrite:
    op: int
    key: str
    value: str
    node: int
    invoke: float
    term: int = 0
    index: int = 0


@dataclass
class PendingRead:
    op: int
    key: str
    node: int
    invoke: float
    acked_before: int  # highest index acknowledged to any client when the read began
    read_index: int = 0


class Workload:
    KEYS = ("a", "b", "c")

    def __init__(self, cluster, rng: random.Random, *, rate_ms: float = 15.0, recorder=None) -> None:
        self.cluster = cluster
        self.rng = rng
        self.rate_ms = rate_ms
        self.recorder = recorder  # an abcd.check HistoryRecorder, or None
        self.next_tag = 0
        self.writes: dict[int, PendingWrite] = {}  # by tag, until accepted
        self.accepted: dict[tuple[int, int], PendingWrite] = {}  # by (node, index)
        self.reads: dict[int, PendingRead] = {}
        self.waiting_reads: list[PendingRead] = []
        self.max_acked_index = 0
        self.acked_writes = 0
        self.completed_reads = 0
        self.refused = 0
        self.all_accepted: list[PendingWrite] = []
        self.leader_hint: int | None = None
        self.limbo: list[PendingWrite] = []  # accepted, then the node crashed: outcome unknown
        self.running = True
        cluster.client = self

    def start(self) -> None:
        self.cluster.schedule(self.rng.uniform(0, self.rate_ms), "call", self._issue)

    def _target(self) -> int:
        if self.leader_hint is not None and self.rng.random() < 0.9:
            return self.leader_hint
        return self.rng.choice(self.cluster.ids)

    def _issue(self) -> None:
        if not self.running:
            return
        self.cluster.schedule(self.rng.expovariate(1.0 / self.rate_ms), "call", self._issue)
        self.next_tag += 1
        tag = self.next_tag
        node = self._target()
        key = self.rng.choice(self.KEYS)
        handle = None
        if self.rng.random() < 0.6:
            value = f"v{tag}"
            if self.recorder is not None:
                handle = self.recorder.invoke(client=tag, kind="put", key=key, value=value, at=self.cluster.now)
            self.writes[tag] = PendingWrite(handle, key, value, node, self.cluster.now)
            self.cluster.propose(node, tag, (f"{key}={value}".encode(),))
        else:
            if self.recorder is not None:
                handle = self.recorder.invoke(client=tag, kind="get", key=key, at=self.cluster.now)
            self.reads[tag] = PendingRead(handle, key, node, self.cluster.now, self.max_acked_index)
            self.cluster.read_index(node, tag)

    # ------------------------------------------------------------------ callbacks from the cluster

    def on_reply(self, node, tag: int, result) -> None:
        if isinstance(result, NotLeader):
            self.refused += 1
            self.leader_hint = result.leader_id
            self._fail(tag)
        elif isinstance(result, Accepted):
            w = self.writes.pop(tag, None)
            if w is not None:
                w.term, w.index = result.term, result.first_index
                self.accepted[(node.id, w.index)] = w
                self.all_accepted.append(w)
                self.leader_hint = node.id
        elif isinstance(result, ReadReady):
            r = self.reads.pop(tag, None)
            if r is None:
                return
            if result.read_index < r.acked_before:
                raise InvariantViolation(
                    f"stale read: node {node.id} gave read index {result.read_index}, but index "
                    f"{r.acked_before} was acknowledged before the read began",
                    invariant="Linearizable Reads",
                    members=(node.id,),
                )
            r.read_index = result.read_index
            self.waiting_reads.append(r)
            self._serve_reads(node)
        else:
            self.refused += 1
            self._fail(tag)

    def _fail(self, tag: int) -> None:
        w = self.writes.pop(tag, None) or self.reads.pop(tag, None)
        if w is not None and self.recorder is not None:
            self.recorder.fail(w.op)

    def on_apply(self, node, entry) -> None:
        w = self.accepted.pop((node.id, entry.index), None)
        if w is not None:
            if entry.term == w.term:
                self.acked_writes += 1
                self.max_acked_index = max(self.max_acked_index, entry.index)
                if self.recorder is not None:
                    self.recorder.ok(w.op, None, at=self.cluster.now)
            elif self.recorder is not None:
                self.recorder.fail(w.op)  # another leader's entry took its place: it never happened
        if self.waiting_reads:
            self._serve_reads(node)

    def on_restore(self, node, index: int) -> None:
        """The node's state machine jumped to a leader's snapshot at `index`.  Writes it
        accepted up to there will not be applied here, so it cannot tell whether they
        took effect: their outcome is unknown, as after a crash.  Reads waiting for
        their read index may be served from the restored state."""
        for key in [k for k in self.accepted if k[0] == node.id and k[1] <= index]:
            self.limbo.append(self.accepted.pop(key))
        if self.waiting_reads:
            self._serve_reads(node)

    def _serve_reads(self, node) -> None:
        still = []
        for r in self.waiting_reads:
            if r.node == node.id and node.last_applied >= r.read_index:
                self.completed_reads += 1
                if self.recorder is not None:
                    self.recorder.ok(r.op, node.state.get(r.key), at=self.cluster.now)
            else:
                still.append(r)
        self.waiting_reads = still

    def on_crash(self, node) -> None:
        # Operations waiting on that node: writes' outcome is unknown, reads are lost.
        for key in [k for k in self.accepted if k[0] == node.id]:
            self.limbo.append(self.accepted.pop(key))
        for r in [r for r in self.waiting_reads if r.node == node.id]:
            self.waiting_reads.remove(r)
            if self.recorder is not None:
                self.recorder.fail(r.op)

    def finish(self, applied: dict) -> None:
        """Stop issuing and settle what is pending.

        A client would not know whether a write in limbo took effect; the simulator
        does (`applied`: index -> (term, data) of every committed entry), and telling
        the checker keeps its search small: a write that never committed is removed,
        one that did stays "unknown" (it happened, at some time after invoke).
        """
        self.running = False
        if self.recorder is not None:
            for w in self.limbo + list(self.accepted.values()):
                if applied.get(w.index) == (w.term, f"{w.key}={w.value}".encode()):
                    self.recorder.unknown(w.op)
                else:
                    self.recorder.fail(w.op)
            for w in self.writes.values():
                self.recorder.fail(w.op)
            for r in list(self.reads.values()) + self.waiting_reads:
                self.recorder.fail(r.op)
