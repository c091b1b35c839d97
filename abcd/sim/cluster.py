"""A whole Raft cluster in one process, in virtual time.

Every node is a RaftCore driven by the same loop: a priority queue of timed events
(ticks, message deliveries, disk completions, client actions, faults).  A node's
storage is modelled as a durable part and a queue of writes in flight: a Persist
becomes durable only when its simulated fsync completes, and a crash keeps a random
prefix of the writes in flight (some may have reached the disk before the crash).
A restart builds a fresh core from what is durable, exactly as a real node would.

After every event the SafetyChecker verifies Raft's safety properties.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from ..raft.core import Options, RaftCore
from ..raft.effects import Accepted, Apply, NotLeader, Persist, ReadReady, Rejected, Reply, Send, Trace
from ..raft.messages import AppendEntriesResponse, Entry, HardState, PeerUnreachable, RequestVoteRequest, RequestVoteResponse, Persisted, Propose, ReadIndex, Tick
from .invariants import InvariantViolation, LogMirror, SafetyChecker
from .network import Network, NetworkFaults

TICK_MS = 10.0
_PROMISES = (AppendEntriesResponse, RequestVoteResponse, RequestVoteRequest)


@dataclass
class SimNode:
    id: int
    core: RaftCore
    up: bool = True
    epoch: int = 0  # bumped at every crash, so that stale timers of a past life are ignored
    durable_hard_state: HardState = field(default_factory=HardState)
    durable_log: list = field(default_factory=list)
    in_flight: list = field(default_factory=list)  # Persist effects written but not yet fsynced
    disk_free_at: float = 0.0
    state: dict = field(default_factory=dict)  # the state machine: key -> value
    last_applied: int = 0


def write_durable(node: SimNode, p: Persist) -> None:
    if p.hard_state is not None:
        node.durable_hard_state = p.hard_state
    if p.entries:
        del node.durable_log[p.entries[0].index - 1 :]
        node.durable_log.extend(p.entries)


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
        self.options = options
        self.disk_delay = disk_delay
        self.tracer = tracer
        self.checker = SafetyChecker()
        self.nodes: dict[int, SimNode] = {}
        self.client = None  # set by attach_client
        for i in self.ids:
            self.nodes[i] = SimNode(i, self._new_core(i, HardState(), []))
            self.checker.mirrors[i] = LogMirror()
            # Ticks start at a random phase so that nodes are not in lock step.
            self.schedule(self.rng.uniform(0, TICK_MS), "tick", i, 0)

    def _new_core(self, node_id: int, hard_state: HardState, entries) -> RaftCore:
        return self.core_factory(
            node_id,
            voters=self.ids,
            hard_state=hard_state,
            entries=entries,
            seed=self.rng.getrandbits(32),
            options=self.options,
        )

    # ------------------------------------------------------------------ the event loop

    def schedule(self, delay: float, kind: str, *args) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (self.now + delay, self._seq, kind, args))

    def run(self, *, max_events: int | None = None, until: float | None = None) -> None:
        done = 0
        while self.queue and (max_events is None or done < max_events):
            if until is not None and self.queue[0][0] > until:
                self.now = until
                return
            when, _, kind, args = heapq.heappop(self.queue)
            self.now = when
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

    def step(self, node: SimNode, event) -> list:
        effects = node.core.step(event)
        self.execute(node, effects)
        return effects

    def execute(self, node: SimNode, effects) -> None:
        checker = self.checker
        core = node.core
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                m = effect.message
                if type(m) in _PROMISES:
                    checker.check_promise(m, node.durable_hard_state, node.durable_log, core.log, node.in_flight)
                for delay in self.network.deliveries(m.source, m.dest):
                    self.schedule(delay, "deliver", m)
            elif kind is Persist:
                node.in_flight.append(effect)
                start = max(self.now, node.disk_free_at)
                node.disk_free_at = start + self.rng.uniform(*self.disk_delay)
                self.schedule(node.disk_free_at - self.now, "disk", node.id, node.epoch, effect.seq)
                if effect.entries:
                    checker.replace_entries(node.id, effect.entries)
            elif kind is Apply:
                checker.check_apply(node.id, effect.entries)
                self.apply(node, effect.entries)
            elif kind is Reply:
                if self.client is not None:
                    self.client.on_reply(node, effect.tag, effect.result)
            elif kind is Trace:
                if effect.name == "BecomeLeader":
                    checker.check_leader(node.id, effect.fields["term"])
                if self.tracer is not None:
                    self.tracer(self.now, node.id, effect)
        if core.commit_index:
            checker.check_commit(node.id, core.commit_index)

    def apply(self, node: SimNode, entries) -> None:
        for e in entries:
            if e.index != node.last_applied + 1:
                raise InvariantViolation(f"node {node.id} applied index {e.index} after {node.last_applied}")
            node.last_applied = e.index
            if e.data and not e.kind:
                key, _, value = e.data.decode().partition("=")
                node.state[key] = value
            if self.client is not None:
                self.client.on_apply(node, e)

    # ------------------------------------------------------------------ faults

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
        self.checker.mirrors[node_id].reset(node.durable_log)
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
        node.core = self._new_core(node_id, node.durable_hard_state, list(node.durable_log))
        node.state = {}
        node.last_applied = 0
        node.disk_free_at = self.now
        self.checker.mirrors[node_id].reset(node.durable_log)
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
        if node.up:
            self.step(node, Propose(tag, commands))

    def read_index(self, node_id: int, tag: int) -> None:
        node = self.nodes[node_id]
        if node.up:
            self.step(node, ReadIndex(tag))


__all__ = [
    "Cluster",
    "SimNode",
    "NetworkFaults",
    "InvariantViolation",
    "Accepted",
    "NotLeader",
    "ReadReady",
    "Rejected",
    "Entry",
]
