"""Node: one abcd server: the Raft core, the WAL, the store and the transport, wired.

Theory of operation
-------------------
`start()` recovers the newest snapshot and the WAL after it, builds the core from them,
and starts the pipeline (pipeline.py).  Each step of the core returns one StepRecord
(raft/record.py) and the sinks execute its parts in this order, each reading its own
part: the node's view of the core (`view`, core_view.py: leader, role, term, commit
index, configuration, from `soft` and `config`) and the member table (transport peers
follow the log's configuration, or an installed snapshot's), outbound (`messages`: one
transport.send per peer per batch, written at once; snapshots filled in), WAL sink
(`persist`: write, group-commit fsync, Persisted back into the events; installed
snapshots saved first), replies (`replies`: core answers -> waiting requests), applier
(`restore` and `committed`: a leader's snapshot, committed entries -> KVStore ->
waiting requests), snapshotter (takes a snapshot once enough entries were applied; the
log behind it is compacted by stepping SnapshotTaken: snapshots.py), trace log
(`traces`), and `_after_step` (the request router's parked requests find the new
leader; the callbacks given to `call_after_step` run, so a step's session answers
leave at once).

The node changes the core only by stepping events, and learns its state from the
records through `view`, not from the core's fields (the dashboard's status aside:
status.py, and docs/architecture.md, "What the shell reads of the core").

Watchers of `/v1/events` (the dashboard) see the traces and log records, and while
one is connected the node also counts its messages and publishes its status
periodically (live_events.py); with nobody connected that costs a check of
`hub.active` per batch.

Client requests enter through `submit` and `handle_many`, which hand them to the
request router (router.py), the one owner of a request's life: it validates them,
then either
* serves them at once (serializable reads, invalid requests),
* pushes them into the pipeline (writes and linearizable reads, on the leader),
  where requests.PendingRequests holds them until the core and the applier answer,
* forwards them to the leader (on a follower; forward.py), or
* parks them until a leader is known, for up to four election timeouts; then 503.
A request the core refuses (leadership just lost) or the forwarding link gives back
is routed again the same way.  A request answers exactly once (requests.Waiter):
with the result, 503 (retry), or 504 after `request_timeout` (a write's outcome is
then unknown).  The router reads leadership through the two callables the node gives
it, and the applied index from the store.

Everything runs on the event loop's thread; only fsync may run in a worker thread
(wal_sink.AdaptiveSyncRunner: when this disk's fsyncs are slow), and snapshot files
are waited for, read back, saved and pruned in another (snapshots.Snapshotter); a
snapshot the node takes is encoded and written by a forked child process.
"""
from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import loguru
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject

from ..kv import KVStore
from ..net import Faults, PeerTransport, faults_outbound
from ..raft.core import Options, RaftCore
from ..raft.effects import Trace
from ..net.chunks import SnapshotChunk, SnapshotChunkAck
from ..raft.messages import InstallSnapshotRequest, InstallSnapshotResponse, Message, PeerUnreachable, SnapshotTaken
from ..raft.record import StepRecord
from ..storage import WAL
from . import snapshots
from . import status as node_status
from .applier import Applier
from .auto_compaction import AutoCompactor
from .auth import NO_CREDENTIAL, Credential, Gate
from .cluster_ops import maybe_promote
from .config import NodeConfig
from .core_view import CoreView
from .events import EventHub
from .leases import LeaseTimers
from .live_events import LiveEvents
from .membership import Membership, members_from_json
from .metrics import make_registry
from .outbound import Outbound
from .pipeline import Pipeline
from .removal import leave as leave_removed
from .responses import Response
from .router import RequestRouter
from .snapshot_receiver import SnapshotReceiver
from .snapshot_sender import SnapshotSender
from .snapshots import Snapshotter
from .tracelog import TraceLog, log_records_to_hub
from .traffic import Traffic
from .wal_sink import AdaptiveSyncRunner, WALSink

# The peer messages a frame is looked through for before it is stepped: snapshots are
# screened, and streamed in chunks that never reach the core.
_SNAPSHOT_KINDS = frozenset({InstallSnapshotRequest, InstallSnapshotResponse, SnapshotChunk, SnapshotChunkAck})


@dataclass
class NodeStats:
    elections: int = 0
    became_leader: int = 0


class Node:
    def __init__(self, config: NodeConfig, meta: dict, tls=None) -> None:
        self.config = config
        # abcd.tls.TlsContexts when the node speaks TLS: peers are dialed with its `dial` context.
        self.tls = tls
        self.meta = meta
        self.node_id: int = int(meta["node_id"])
        self.cluster_id: str = str(meta["cluster_id"])
        self.logger = loguru.logger.bind(node=config.name)
        self.stats = NodeStats()
        self.hub = EventHub()
        self.traffic = Traffic()  # counted only while hub.active
        self.faults = Faults(seed=None) if config.enable_faults else None
        self.stopping = False
        self.promoting = False  # a learner's promotion is under way (cluster_ops.maybe_promote)
        self.commit_at_last_tick = 0  # for deciding when a learner has caught up
        self.failed: BaseException | None = None
        self.removed: str | None = None  # why, once this node knows it was removed (removal.py)
        self.stopped = asyncio.Event()
        self._state_waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        # Callbacks for the end of the pipeline step in progress (None between steps).
        self._step_end: list[Callable[[], None]] | None = None
        self._fsync_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abcd-fsync")
        # Its own thread: a WAL fsync never waits behind a snapshot being encoded.
        self._snapshot_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abcd-snapshot")
        # How long a request waits for a leader: an election takes up to two election
        # timeouts (the randomized timeout) plus its rounds, and a split vote another;
        # but a request never sent must get its 503 before the sweep answers 504.
        self.park_seconds = min(4 * config.election_timeout_ms / 1000.0, 0.8 * config.request_timeout)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        config = self.config
        # The newest snapshot first: the WAL then skips decoding the entries it covers.
        loaded = snapshots.newest_file(config.data_dir, self.logger)
        self.wal, recovered = WAL.open(
            config.data_dir, segment_bytes=config.wal_segment_bytes, preallocate_bytes=config.wal_preallocate_bytes,
            covered=loaded.index if loaded is not None else 0,
        )
        if recovered.torn_bytes_truncated:
            self.logger.warning("recovery cut a torn write of {} bytes off the WAL", recovered.torn_bytes_truncated)
        self.store = KVStore()
        self.gate = Gate(self.store, self.cluster_id, config.auth_token_ttl)
        try:
            # The newest snapshot goes into the store, the WAL's entries after it into the core.
            newest, entries = snapshots.recover(config.data_dir, recovered, self.store, self.logger, loaded=loaded)
        except BaseException:
            self.wal.close()
            raise
        self.core = RaftCore(
            self.node_id,
            hard_state=recovered.hard_state,
            entries=entries,
            snapshot=newest.raft_snapshot() if newest is not None else None,
            seed=random.SystemRandom().getrandbits(32),
            options=Options(
                election_ticks=config.election_ticks,
                heartbeat_ticks=1,
                # Restarting on its data (it has voted or heard of a term): no need to
                # wait a whole timeout before the first election (options.py says why).
                advance_first_election=recovered.hard_state.current_term > 0,
            ).validate(),
        )
        self.view = CoreView(self.core)
        self.membership = Membership(self.node_id, members_from_json(self.meta.get("seed_members", [])))
        if newest is not None:
            self.membership.set_base(newest.members)
        self.leases = LeaseTimers(retry_seconds=config.election_timeout_ms / 1000.0)
        # Leadership reaches the router only through `is_leader` and `leader_id`.
        self.router = RequestRouter(
            store=self.store,
            gate=self.gate,
            leases=self.leases,
            loop=loop,
            is_leader=self.view.is_leader,
            leader_id=self._leader_id,
            address_of=self.membership.address_of,
            node_id=self.node_id,
            request_timeout=config.request_timeout,
            park_seconds=self.park_seconds,
            retry_seconds=config.tick_seconds,
            local_reads=config.unsafe_stale_reads,
            logger=self.logger,
            tls=self.tls,
        )
        # The router's parts, for the metrics, the status and removal.
        self.requests = self.router.requests
        self.forwarder = self.router.forwarder
        self.snapshots = Snapshotter(
            data_dir=config.data_dir,
            snapshot_count=config.snapshot_count,
            catchup_entries=config.snapshot_catchup_entries,
            view=self.view,
            compact_log=lambda index, upto: self.pipeline.push_events([SnapshotTaken(index, upto)]),
            store=self.store,
            membership=self.membership,
            wal=self.wal,
            run=snapshots.thread_runner(loop, self._snapshot_executor),
            newest=newest,
            logger=self.logger,
            on_event=self._snapshot_event,
            defer=loop.call_soon,
            max_snapshots=config.max_snapshots,
            max_wals=config.max_wals,
        )
        self.applier = Applier(
            self.store,
            self.requests,
            load_snapshot=self.snapshots.store_for,
            on_restored=self.snapshots.on_restored,
            logger=self.logger,
        )
        self.pipeline = Pipeline(
            self.core.step_many,
            tick_seconds=config.tick_seconds,
            to_events=self.requests.to_events,
            faults=self.faults,
            call_soon=loop.call_soon,
            heard=self._heard,
        )
        # The pipeline is built around the router's PendingRequests (to_events), so the
        # router learns where the leader's requests go once it exists.
        self.router.push = self.pipeline.push_requests
        self.transport = PeerTransport(
            self.node_id,
            self.cluster_id,
            token=config.cluster_token,
            address=config.advertise,
            on_frame=self._on_frame,
            on_peer_lost=self._on_peer_lost,
            is_removed=self.membership.is_removed,
            on_removed=lambda peer, reason: leave_removed(self, f"node {peer} says: {reason}"),
            on_hello=self._on_hello,
            logger=self.logger,
            ssl_context=(lambda: self.tls.dial) if self.tls is not None else None,
        )
        self.scheduler = AsyncIOScheduler(loop)
        self.wal_sink = WALSink(
            self.wal,
            AdaptiveSyncRunner(loop, self._fsync_executor),
            self.pipeline.persisted,
            self._fatal,
            save_snapshot=self.snapshots.save_installed,
            on_snapshot_durable=self.snapshots.on_install_durable,
        )
        deliver = self._outbound_deliver()
        self.outbound = Outbound(deliver, fill_snapshot=self._stream_snapshot, hub=self.hub, traffic=self.traffic)
        view = self.view
        self.snapshot_sender = SnapshotSender(
            deliver,
            leading=lambda term: view.is_leader() and view.current_term == term,
            clock=loop.time,
            # Far beyond a chunk's round trip on a busy node; a stalled transfer restarts.
            ack_timeout=max(5.0, 10 * config.election_timeout_ms / 1000.0),
            logger=self.logger,
            on_event=self._snapshot_event,
        )
        self.snapshot_receiver = SnapshotReceiver(
            self.node_id, config.data_dir, deliver, lambda peer, request: self._on_frame(peer, [request]),
            current_term=lambda: view.current_term, logger=self.logger,
        )
        # The election timer as the last tick found it: (ticks elapsed, randomized timeout).
        self._election_timer = self.view.election_timer()
        self.trace_log = TraceLog(
            self.logger, self.hub, node_id=self.node_id, on_trace=self._count_trace,
            annotate={"Timeout": self._timeout_fields},
        )
        self.live_events = LiveEvents(
            self.hub, node_id=self.node_id, status=self.status, traffic=self.traffic, loop=loop, logger=self.logger,
            flush=self.trace_log.flush,
        )
        self.hub.on_active = self.live_events.start
        self._hub_sink = loguru.logger.add(log_records_to_hub(self.hub, config.name), level="INFO", format="{message}")
        self.metrics = make_registry(self)
        self.auto_compactor = AutoCompactor(config.auto_compaction, retry_seconds=config.request_timeout)
        self._sync_membership()
        self.pipeline.start(
            self.scheduler,
            self._record_sinks(),
            on_tick=self._on_tick,
            on_error=self._fatal,
        )
        deadline = loop.time() + 5.0
        while not self.pipeline.started():
            if loop.time() > deadline:
                raise RuntimeError("the node's pipeline did not subscribe to its inputs within 5 s")
            await asyncio.sleep(0)
        snapshot_index = newest.index if newest is not None else 0
        self.logger.bind(event="NodeStarted").info(
            "node {} of cluster {} at {}: snapshot at index {}, log {}..{}, term {}",
            self.node_id, self.cluster_id, config.advertise, snapshot_index, snapshot_index + 1,
            entries[-1].index if entries else snapshot_index, recovered.hard_state.current_term,
        )

    def _record_sinks(self) -> list[Callable[[StepRecord], None]]:
        """The sinks of every step record, in the order the shell honours its parts
        (raft/record.py); each reads its own part."""
        return [
            self._begin_step,
            # First, so that every later sink sees this step's leader and configuration,
            # and before outbound: a member added by this step must be reachable by its
            # messages.
            self._guard(self._learn),
            # Frames first, then the WAL write: a leader's AppendEntries need not wait
            # for its own disk (thesis §10.2.1), and every message that promises
            # durable state is held by the core until Persisted, whatever this order.
            self._guard(self.outbound.on_record),
            self._guard(self.wal_sink.on_record),
            self._guard(self.requests.on_record),
            self._guard(self.applier.on_record),
            # After the applier: a snapshot captures what this step applied.
            self._guard(self.snapshots.on_record, fatal=False),
            self._guard(self.trace_log.on_record, fatal=False),
            self._guard(self._after_step),
        ]

    def _guard(self, sink: Callable[[StepRecord], None], *, fatal: bool = True) -> Callable[[StepRecord], None]:
        """A sink that cannot break the fan-out: an exception in it is logged and, unless
        the sink is only about logging, stops the node (its state can no longer be trusted;
        a restart recovers from the WAL)."""

        def guarded(record: StepRecord) -> None:
            try:
                sink(record)
            except Exception as error:
                if fatal:
                    self._fatal(error)
                else:
                    self.logger.opt(exception=error).error("{} failed", getattr(sink, "__qualname__", sink))

        return guarded

    def _outbound_deliver(self):
        if self.faults is None:
            return self.transport.send
        # Fault injection sits between the outbound sink and the transport.
        batches: Subject = Subject()
        batches.pipe(faults_outbound(self.faults, self.scheduler)).subscribe(
            lambda batch: self.transport.send(batch[0], list(batch[1])), scheduler=self.scheduler
        )
        return lambda dest, messages: batches.on_next((dest, messages))

    def _heard(self, peer: int, messages: list[Message]) -> None:
        """A peer's frame that passed the faults, about to be stepped."""
        if self.hub.active:
            self.traffic.count_received(peer, messages)

    def _on_frame(self, peer: int, messages: list[Message]) -> None:
        """A peer's frame, into the pipeline; a snapshot in it is checked first, and
        snapshot chunks are taken out."""
        for message in messages:
            if type(message) in _SNAPSHOT_KINDS:
                messages = self._snapshot_messages(peer, messages)
                break
        if messages:
            self.pipeline.on_frame(peer, messages)

    def _snapshot_messages(self, peer: int, messages: list[Message]) -> list[Message]:
        """The messages of a frame for the core: chunks and their acknowledgements go to
        the snapshot stream (snapshot_sender.py, snapshot_receiver.py), snapshots are screened."""
        kept = []
        screen = False
        for message in messages:
            kind = type(message)
            if kind is SnapshotChunk or kind is SnapshotChunkAck:
                # They skip the pipeline, and so its faults: a partition or loss applies here.
                if self.faults is not None and not self.faults.apply(peer, [message]):
                    continue
                if kind is SnapshotChunk:
                    self.snapshot_receiver.on_chunk(peer, message)
                else:
                    self.snapshot_sender.on_ack(peer, message)
                continue
            if kind is InstallSnapshotResponse:
                self.snapshot_sender.on_response(peer)
            elif kind is InstallSnapshotRequest:
                screen = True
            kept.append(message)
        return self.snapshots.screen(peer, kept) if screen else kept

    def _stream_snapshot(self, message: InstallSnapshotRequest) -> None:
        """Outbound's snapshot filler: the snapshot leaves in chunks, never in the frame."""
        self.snapshot_sender.offer(message, self.snapshots.fill, self.snapshots.newest_index)

    def _learn(self, record: StepRecord) -> None:
        """The record's soft state and configuration, into the view and the member table."""
        if not self.view.learn(record):
            return  # the configuration is the same object: nothing to recompute
        if record.restore is not None:
            # The log was replaced: the member table starts from the snapshot's.
            self.membership.set_base(self.snapshots.members_of(record.restore))
        self._sync_membership()

    def _snapshot_event(self, name: str, fields: dict) -> None:
        """Snapshot taken/sent/installed: one line in the trace log, as the core's events
        (after the core's own traces when it happens during a step)."""

        def trace() -> None:
            soft = self.view.soft
            self.trace_log.trace(Trace(name, {**fields, "term": soft.term, "role": soft.role}))

        if self._step_end is not None:
            self._step_end.append(trace)
        else:
            trace()

    async def stop(self) -> None:
        """Stop stepping, answer everything waiting, make the WAL durable, close."""
        if self.stopping:
            return
        self.stopping = True
        self.logger.bind(event="NodeStopping").info("stopping")
        self.pipeline.stop()
        self.live_events.close()
        self.router.stop()
        for _, future in self._state_waiters:
            if not future.done():
                future.cancel()
        await self.wal_sink.wait_idle()
        # A snapshot being taken finishes (it is saved whole or not at all) and compacts
        # nothing more once the WAL closes.
        await self.snapshots.wait_idle()
        self.snapshots.close()
        try:
            self.wal.close()
        except Exception as e:  # a failed WAL was reported already; closing must go on
            self.logger.error("closing the WAL: {}", e)
        await self.transport.close()
        self.snapshot_receiver.close()
        await self.router.close()
        self._fsync_executor.shutdown(wait=True)
        self._snapshot_executor.shutdown(wait=True)
        loguru.logger.remove(self._hub_sink)
        self.stopped.set()

    def _fatal(self, error: BaseException) -> None:
        """Storage failed or the pipeline broke: the node cannot go on safely."""
        if self.failed is None:
            self.failed = error
            self.logger.opt(exception=error).bind(event="Fatal").critical("fatal error, stopping the node: {}", error)
            self.loop.create_task(self.stop())

    # ------------------------------------------------------------------ after each step

    def call_after_step(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the pipeline step in progress has run all its sinks, or in
        the next loop turn when no step is in progress.

        Session answers use it: every answer a step completes goes out in one frame, written
        in that same turn, before the loop polls for more input."""
        if self._step_end is not None:
            self._step_end.append(callback)
        else:
            self.loop.call_soon(callback)

    def _begin_step(self, record: StepRecord) -> None:
        self._step_end = []

    def _after_step(self, record: StepRecord) -> None:
        callbacks, self._step_end = self._step_end or [], None
        for callback in callbacks:
            try:
                callback()
            except Exception as error:  # one client's broken socket must not stop the node
                self.logger.opt(exception=error).error("after-step callback failed")
        self.router.after_step()
        if self._state_waiters:
            waiting = []
            for predicate, future in self._state_waiters:
                if future.done():
                    continue
                if predicate():
                    future.set_result(True)
                else:
                    waiting.append((predicate, future))
            self._state_waiters = waiting

    def sync_membership(self) -> bool:
        """Member table and transport peers follow the log's latest configuration."""
        return self._sync_membership()

    def _on_hello(self, peer: int, address: str) -> None:
        """A peer dialed in: answer it at its advertised address if the member table
        does not name it yet (membership.py, "Peers the table does not name yet")."""
        if self.membership.heard(peer, address):
            self.logger.info("answering node {}, not in this node's member table yet, at {}", peer, address)
            self._set_peers()

    def _on_peer_lost(self, peer: int) -> None:
        self.snapshot_sender.peer_lost(peer)
        self.snapshot_receiver.peer_lost(peer)
        if self.membership.forget(peer):
            self._set_peers()
        self.pipeline.push_requests([PeerUnreachable(peer)])

    def _sync_membership(self) -> bool:
        if not self.membership.sync(self.view.config_state):
            return False
        self._set_peers()
        self.transport.refuse_removed()
        if self.membership.is_removed(self.node_id):
            leave_removed(self, "a committed configuration of its own log no longer names it")
        return True

    def _set_peers(self) -> None:
        """Transport peers follow the member table (and the peers heard of)."""
        peers = self.membership.peers()
        for node_id in set(self.transport.peers) - set(peers):
            self.transport.remove_peer(node_id)
        for node_id, address in peers.items():
            try:
                self.transport.set_peer(node_id, address)
            except ValueError as e:
                # A bad address in the log must not stop the node (it would again at
                # every restart, replaying the same log): that member stays unreachable.
                self.logger.error("member {} has an unusable address {!r}: {}", node_id, address, e)

    def _on_tick(self, _tick) -> None:
        # Before the step that takes this tick (batching defers it to the next turn):
        # if the tick times the election out, the core resets its timer in that step,
        # and the Timeout trace reads what it was here (_timeout_fields).
        self._election_timer = self.view.election_timer()
        now = self.loop.time()
        self.router.on_tick(now)
        maybe_promote(self)
        self.snapshot_sender.on_tick()
        self._expire_leases(now)
        self._auto_compact(now)
        fill_error = self.wal.fill_error
        if fill_error is not None:
            self.wal.fill_error = None
            self.logger.bind(event="WALPreallocateFailed").warning(
                "{}; WAL writes append without preallocation (fsyncs get slower) until the next segment", fill_error
            )

    def _expire_leases(self, now: float) -> None:
        view = self.view
        expired = self.leases.on_tick(self.store.leases(), now, leading=view.is_leader(), term=view.current_term)
        if not expired:
            return
        for lease_id in expired:
            self.logger.bind(event="LeaseExpire").info("lease {} expired; proposing its end", lease_id)
        self.router.propose([{"op": "lease_expire", "lease": lease_id} for lease_id in expired])

    def _auto_compact(self, now: float) -> None:
        view, store = self.view, self.store
        revision = self.auto_compactor.on_tick(
            revision=store.current_revision, compact_revision=store.compact_revision, now=now,
            leading=view.is_leader(), term=view.current_term,
        )
        if revision is None:
            return
        self.logger.bind(event="AutoCompact").info(
            "proposing to compact the history below revision {} ({} retention {})",
            revision, self.config.auto_compaction.mode, self.config.auto_compaction.amount,
        )
        self.router.propose([{"op": "compact", "revision": revision}])

    def _timeout_fields(self) -> dict:
        """A Timeout trace's election timer in ms: the ticks counted since the timer was
        last reset (a heartbeat or snapshot from the leader, a vote granted, a new role;
        LeaderUnreachable moves it forward) and the randomized timeout they reached."""
        elapsed, timeout = self._election_timer
        heartbeat_ms = self.config.heartbeat_ms
        return {"election_elapsed_ms": (elapsed + 1) * heartbeat_ms, "election_timeout_ms": timeout * heartbeat_ms}

    def _count_trace(self, trace: Trace) -> None:
        if trace.name == "BecomeCandidate":
            self.stats.elections += 1
        elif trace.name == "BecomeLeader":
            self.stats.became_leader += 1

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> asyncio.Future:
        """A future that completes (True) after the step at which `predicate()` holds."""
        future = self.loop.create_future()
        if predicate():
            future.set_result(True)
            return future
        self._state_waiters.append((predicate, future))

        def expire() -> None:
            if not future.done():
                future.set_result(False)

        self.loop.call_later(timeout, expire)
        return future

    # ------------------------------------------------------------------ client requests
    # The request router (router.py) owns a request's life; these are its doors.

    def submit(
        self, request: object, *, forwarded: bool = False, credential: Credential = NO_CREDENTIAL, admin: bool = False
    ) -> asyncio.Future:
        """Handle one client request; the future gets its Response."""
        return self.router.submit(request, forwarded=forwarded, credential=credential, admin=admin)

    def handle(self, request: object, callback: Callable[[Response], None], *, forwarded: bool = False) -> None:
        """Handle one client request; `callback(response)` is called exactly once."""
        self.router.handle_many([(request, callback)], forwarded=forwarded)

    def handle_many(
        self,
        requests: list[tuple[object, Callable[[Response], None]]],
        *,
        forwarded: bool = False,
        credential: Credential = NO_CREDENTIAL,
        admin: bool = False,
    ) -> None:
        """Handle the requests of one client frame together (RequestRouter.handle_many)."""
        self.router.handle_many(requests, forwarded=forwarded, credential=credential, admin=admin)

    def _leader_id(self) -> int | None:
        """The leader this node knows (None: none); how the router learns it."""
        return self.view.leader_id

    # ------------------------------------------------------------------ state

    def is_leader(self) -> bool:
        return self.view.is_leader()

    def healthy(self) -> bool:
        soft = self.view.soft
        return soft.leader_id is not None and self.store.applied_index >= soft.commit_index and self.failed is None

    def status(self) -> dict:
        """The `GET /v1/status` body (status.py: every read for watchers is there)."""
        return node_status.describe(self)
