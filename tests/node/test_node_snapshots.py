"""Snapshots in the node: taking them and compacting behind them, filling the core's
InstallSnapshotRequest, screening and installing a leader's snapshot, starting from one.

The core here is a real one-voter leader whose Persists go to a real WAL (small
segments, so that compaction deletes some); the worker thread is a ManualRunner, so
each test decides when a snapshot's save completes.  Snapshots are written in that
thread unless a test asks for the forked child (`fork=True`), whose timing is its own.
"""
from __future__ import annotations

import itertools
import os
from types import SimpleNamespace

import orjson
import pytest

from abcd.kv import KVStore
from abcd.kv import snapshot as kv_snapshot
from abcd.node import snapshot_format, snapshot_install, snapshot_taking, snapshots
from abcd.node.applier import Applier
from abcd.node.membership import MemberInfo, Membership, encode_context
from abcd.node.outbound import Outbound
from abcd.node.requests import PendingRequests
from abcd.node.snapshot_format import NodeSnapshot, SnapshotDataError, decode_wire, encode_state, encode_wire
from abcd.node.snapshots import Snapshotter
from abcd.raft.config import Configuration, encode_config
from abcd.raft.core import RaftCore
from abcd.raft.effects import Persist, Restore, Send
from abcd.node.core_view import CoreView
from abcd.raft.messages import (
    SnapshotTaken,
    ENTRY_CONFIG,
    AppendEntriesRequest,
    Entry,
    HardState,
    InstallSnapshotRequest,
    Persisted,
    Propose,
    Snapshot,
    Tick,
)
from abcd.storage import WAL, StorageError, load_latest_snapshot, save_snapshot
from abcd.storage.recovery import Recovered
from node_fakes import ListLogger, ManualRunner, record_of

CONTEXT = encode_context({1: MemberInfo("n1", "127.0.0.1:8080")}, next_id=2)
tags = itertools.count(1)


def put(key: str, value: str = "v") -> bytes:
    return orjson.dumps({"op": "put", "key": key, "value": value, "lease": 0})


class Rig:
    """A one-voter leader wired as the node wires it, minus the network."""

    def __init__(
        self,
        tmp_path,
        *,
        count: int = 10,
        catchup: int = 3,
        segment_bytes: int = 400,
        fork: bool = False,
        defer=None,
        max_snapshots: int = 2,
        max_wals: int = 1,
    ) -> None:
        self.data_dir = os.fspath(tmp_path / "data")
        seed = Entry(1, 1, encode_config(Configuration(frozenset({1})), CONTEXT), ENTRY_CONFIG)
        self.wal, _ = WAL.open(self.data_dir, segment_bytes=segment_bytes)
        self.wal.write(Persist(0, HardState(1, None), (seed,)))
        self.wal.sync()
        self.core = RaftCore(1, hard_state=HardState(1, None), entries=[seed], seed=3)
        self.view = CoreView(self.core)
        self.store = KVStore()
        self.requests = PendingRequests(
            serve_read=lambda op: None, on_not_leader=lambda i, l: None,
            applied_index=lambda: self.store.applied_index, timeout=5.0,
        )
        self.applier = Applier(self.store, self.requests)
        self.membership = Membership(1)
        self.runner = ManualRunner()
        self.log = ListLogger()
        self.events: list[tuple[str, dict]] = []
        self.snapshots = Snapshotter(
            data_dir=self.data_dir,
            snapshot_count=count,
            catchup_entries=catchup,
            view=self.view,
            compact_log=lambda index, upto: self.step([SnapshotTaken(index, upto)]),
            store=self.store,
            membership=self.membership,
            wal=self.wal,
            run=self.runner,
            logger=self.log,
            on_event=lambda name, fields: self.events.append((name, fields)),
            fork=fork,
            defer=defer,
            max_snapshots=max_snapshots,
            max_wals=max_wals,
        )
        for _ in range(100):
            self.step([Tick()])
            if self.core.is_leader() and self.core.last_applied == self.core.log.last_index:
                break
        assert self.core.is_leader() and self.store.applied_index == 2  # the seed and the no-op
        self.membership.sync(self.core.config_state)

    def step(self, events: list) -> None:
        """One step, its record executed as the node does (the parts this rig has)."""
        record = self.core.step_many(events)
        if self.view.learn(record):
            self.membership.sync(record.config)
        if record.persist is not None:
            self.wal.write(record.persist)
            self.wal.sync()
        self.applier.on_record(record)
        self.snapshots.on_record(record)
        if record.persist is not None:
            self.step([Persisted(record.persist.seq)])

    def put(self, *keys: str) -> None:
        for key in keys:
            self.step([Propose(next(tags), (put(key, f"v-{key}"),))])

    def close(self) -> None:
        self.wal.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def snap_files(data_dir: str) -> list[str]:
    return sorted(os.listdir(os.path.join(data_dir, "snap")))


# --------------------------------------------------------------------------- formats


def test_encode_state_writes_the_kv_snapshot_format_byte_for_byte():
    store = KVStore()
    for i in range(1, 2 * snapshot_format.ENCODE_SLICE + 7):  # more keys than one slice
        store.apply({"op": "put", "key": f"k{i:05}\u2028\x7f", "value": "é\"\n\x00\U0001f600" * (i % 3), "lease": 0}, index=i)
    state = store.capture()
    assert encode_state(state) == kv_snapshot.encode(state)  # orjson writes what json writes
    assert encode_state(state).startswith(b"ABCD-KV\0")
    assert KVStore.restore(encode_state(state)).snapshot() == store.snapshot()
    empty = KVStore()
    assert KVStore.restore(encode_state(empty.capture())).snapshot() == empty.snapshot()


def test_the_wire_form_is_a_header_line_then_the_kv_document():
    data = encode_wire(CONTEXT, b'{"format":"abcd-kv"}')
    assert data.startswith(b'{"format":"abcd-node-snapshot","version":1,"members":')
    members, kv = decode_wire(data)
    assert members == CONTEXT and bytes(kv) == b'{"format":"abcd-kv"}'
    assert decode_wire(encode_wire(None, b"x")) == (None, memoryview(b"x"))


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'{"format":"abcd-kv","version":1}', "does not start with a header line"),
        (b"not json\n{}", "header is not valid JSON"),
        (b'{"format":"etcd"}\n{}', "is not an abcd-node-snapshot header"),
        (b'{"format":"abcd-node-snapshot","version":2}\n{}', "format version 2 is not supported (expected 1)"),
        (b'{"format":"abcd-node-snapshot","version":1,"members":[1]}\n{}', "members must be a string or null"),
    ],
)
def test_malformed_wire_data_gets_a_precise_error(data, reason):
    with pytest.raises(SnapshotDataError) as raised:
        decode_wire(data)
    assert reason in str(raised.value)


# --------------------------------------------------------------------------- taking


def test_a_snapshot_is_taken_after_count_entries_then_the_log_and_wal_are_compacted_behind_it(rig):
    rig.put(*(f"k{i}" for i in range(7)))  # applied index 9: 9 entries since "index 0"
    assert rig.runner.pending == 0
    rig.put("k7")  # index 10
    assert rig.runner.pending == 1 and rig.snapshots.in_progress
    rig.put("k8", "k9")  # writes go on meanwhile, and start no second snapshot
    assert rig.runner.pending == 1 and rig.store.applied_index == 12
    segments = len(rig.wal.segment_paths)
    assert rig.core.log.snapshot_index == 0 and not os.path.exists(os.path.join(rig.data_dir, "snap"))

    rig.runner.complete()

    newest = rig.snapshots.newest
    assert (newest.index, newest.term) == (10, rig.core.current_term)
    assert newest.voters == {1} and newest.learners == frozenset()
    assert snap_files(rig.data_dir) == [f"{newest.term:020d}-{10:020d}.snap"]
    loaded = load_latest_snapshot(rig.data_dir)
    assert loaded.meta == {"voters": [1], "learners": [], "members": CONTEXT}
    # The capture was taken at index 10: the writes applied after it are not in it.
    restored = KVStore.restore(loaded.data)
    assert restored.applied_index == 10
    assert restored.get("k7")["value"] == "v-k7" and restored.get("k8") is None
    assert decode_wire(newest.data) == (CONTEXT, memoryview(loaded.data))
    # catchup_entries = 3 stay in the log behind the snapshot; the WAL lost whole segments.
    assert rig.core.log.snapshot_index == 7
    assert len(rig.wal.segment_paths) < segments
    [(name, fields)] = rig.events
    assert name == "SnapshotTaken"
    assert fields["index"] == 10 and fields["log_compacted_to"] == 7 and fields["bytes"] == len(loaded.data)
    assert fields["wal_segments_removed"] == segments - len(rig.wal.segment_paths)
    assert rig.snapshots.taken == 1 and rig.snapshots.take_seconds > 0 and not rig.snapshots.in_progress
    # The WAL still holds everything after the snapshot.
    rig.wal.close()
    wal, recovered = WAL.open(rig.data_dir, segment_bytes=400)
    rig.wal = wal
    assert recovered.first_index <= 11 and recovered.last_index == 12
    assert [e.index for e in recovered.entries_after(10)] == [11, 12]


def test_a_forked_child_writes_the_same_snapshot_as_the_worker_thread(tmp_path):
    threaded, forked = Rig(tmp_path / "thread"), Rig(tmp_path / "fork", fork=True)
    try:
        for r in (threaded, forked):
            r.put(*(f"k{i}" for i in range(8)))  # index 10: a snapshot starts
            r.put("after")  # applied after the snapshot's index: in neither file
            assert r.runner.pending == 1
            r.runner.complete()
        assert forked.snapshots.taken == 1 and forked.snapshots.failures == 0
        assert snap_files(forked.data_dir) == snap_files(threaded.data_dir)
        [name] = snap_files(forked.data_dir)
        with open(os.path.join(forked.data_dir, "snap", name), "rb") as f, open(
            os.path.join(threaded.data_dir, "snap", name), "rb"
        ) as g:
            assert f.read() == g.read()
        assert forked.snapshots.newest.data == threaded.snapshots.newest.data
        assert forked.snapshots.newest.path == os.path.join(forked.data_dir, "snap", name)
        assert forked.core.log.snapshot_index == threaded.core.log.snapshot_index == 7
        assert KVStore.restore(load_latest_snapshot(forked.data_dir).data).get("after") is None
    finally:
        threaded.close()
        forked.close()


def test_a_forked_child_that_fails_reports_why_and_the_snapshot_is_retried(tmp_path):
    rig = Rig(tmp_path, fork=True)
    try:
        with open(os.path.join(rig.data_dir, "snap"), "w") as f:  # a file where the directory goes
            f.write("in the way")
        rig.put(*(f"k{i}" for i in range(8)))
        rig.runner.complete()
        assert rig.snapshots.failures == 1 and rig.snapshots.newest is None and rig.core.log.snapshot_index == 0
        [error] = rig.log.at("ERROR")
        assert "taking a snapshot at index 10 failed: the process writing the snapshot exited with status 1" in error
        assert "snap" in error and "next attempt is at index 20 (in the worker thread, not a forked child)" in error
        assert not rig.snapshots.fork
        os.unlink(os.path.join(rig.data_dir, "snap"))
        rig.put(*(f"m{i}" for i in range(10)))
        rig.runner.complete()
        assert rig.snapshots.newest.index == 20 and rig.core.log.snapshot_index == 17
    finally:
        rig.close()


def test_without_fork_the_worker_thread_writes_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "fork")
    rig = Rig(tmp_path, fork=True)
    try:
        rig.put(*(f"k{i}" for i in range(8)))
        rig.runner.complete()
        assert rig.snapshots.newest.index == 10 and rig.snapshots.failures == 0
    finally:
        rig.close()


def test_the_member_table_survives_compacting_away_every_config_entry(rig):
    rig.put(*(f"k{i}" for i in range(8)))
    rig.runner.complete()
    assert rig.core.log.snapshot_index == 7 and rig.core.config_entries == []  # the seed entry is gone
    rig.membership.sync(rig.core.config_state)
    assert rig.membership.members == {1: MemberInfo("n1", "127.0.0.1:8080")}
    assert rig.membership.next_id == 2


def test_old_snapshot_files_are_pruned_to_the_newest_two(rig):
    for round_ in range(4):
        rig.put(*(f"r{round_}-{i}" for i in range(10)))
        rig.runner.complete()
    indexes = [int(name.split("-")[1].split(".")[0]) for name in snap_files(rig.data_dir)]
    assert indexes == [30, 40]
    assert rig.snapshots.newest.index == 40 and rig.snapshots.taken == 4
    assert rig.events[-1][1]["snapshots_removed"] == 1


def test_retention_keeps_max_snapshots_files_and_max_wals_segments_even_when_covered(tmp_path):
    rig = Rig(tmp_path, max_snapshots=3, max_wals=4)
    try:
        for round_ in range(6):
            rig.put(*(f"r{round_}-{i}" for i in range(10)))
            rig.runner.complete()
        indexes = [int(name.split("-")[1].split(".")[0]) for name in snap_files(rig.data_dir)]
        assert indexes == [40, 50, 60]
        # Segments of 400 bytes hold a few entries each: many were covered, 4 are kept.
        assert sorted(os.listdir(os.path.join(rig.data_dir, "wal"))) == [
            os.path.basename(p) for p in rig.wal.segment_paths
        ]
        assert len(rig.wal.segment_paths) == 4
        # What is left still recovers everything: the newest snapshot and the WAL after it.
        rig.wal.close()
        wal, recovered = WAL.open(rig.data_dir, segment_bytes=400)
        rig.wal = wal
        store = KVStore()
        newest, entries = snapshots.recover(rig.data_dir, recovered, store, rig.log)
        assert newest.index == 60 and [e.index for e in entries] == list(range(61, 63))
        assert store.get("r5-7")["value"] == "v-r5-7"
    finally:
        rig.close()


def test_zero_retention_keeps_every_snapshot_and_segment(tmp_path):
    rig = Rig(tmp_path, max_snapshots=0, max_wals=0)
    try:
        segments = None
        for round_ in range(3):
            rig.put(*(f"r{round_}-{i}" for i in range(10)))
            rig.runner.complete()
            assert segments is None or len(rig.wal.segment_paths) > segments
            segments = len(rig.wal.segment_paths)
        assert len(snap_files(rig.data_dir)) == 3
        assert rig.wal.segment_paths[0].endswith(f"{1:020d}.wal")
    finally:
        rig.close()


def test_a_failed_snapshot_is_logged_compacts_nothing_and_is_retried_after_count_more_entries(rig):
    with open(os.path.join(rig.data_dir, "snap"), "w") as f:  # a file where the directory goes
        f.write("in the way")
    rig.put(*(f"k{i}" for i in range(8)))
    rig.runner.complete()
    assert rig.snapshots.failures == 1 and rig.snapshots.newest is None and not rig.snapshots.in_progress
    assert rig.core.log.snapshot_index == 0
    [error] = rig.log.at("ERROR")
    assert "taking a snapshot at index 10 failed" in error and "next attempt is at index 20" in error
    rig.put(*(f"m{i}" for i in range(9)))  # up to index 19: no new attempt
    assert rig.runner.pending == 0
    os.unlink(os.path.join(rig.data_dir, "snap"))
    rig.put("m9")  # index 20
    rig.runner.complete()
    assert rig.snapshots.newest.index == 20 and rig.core.log.snapshot_index == 17


class Deferred:
    """defer(fn) of the node (loop.call_soon), run by hand: one callback at a time."""

    def __init__(self) -> None:
        self.pending: list = []

    def __call__(self, fn) -> None:
        self.pending.append(fn)

    def run_one(self) -> None:
        self.pending.pop(0)()


def stepped_rig(tmp_path, monkeypatch, step: int) -> tuple[Rig, Deferred]:
    """A rig compacting `step` entries per deferred call, with a snapshot at index 10
    taken and the first step done (the log goes to 7)."""
    monkeypatch.setattr(snapshot_taking, "COMPACT_STEP", step)
    deferred = Deferred()
    rig = Rig(tmp_path, defer=deferred)
    rig.put(*(f"k{i}" for i in range(8)))
    rig.runner.complete()
    return rig, deferred


def run_steps(rig: Rig, deferred: Deferred) -> list[int]:
    """Run the deferred steps one by one: where the log starts after each."""
    seen = []
    while deferred.pending:
        assert len(deferred.pending) == 1  # one chain of steps, never two
        deferred.run_one()
        seen.append(rig.core.log.snapshot_index)
    return seen


def test_the_log_is_compacted_a_step_per_loop_turn(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot_taking, "COMPACT_STEP", 2)
    deferred = Deferred()
    rig = Rig(tmp_path, defer=deferred)
    try:
        rig.put(*(f"k{i}" for i in range(8)))  # a snapshot at index 10; the log goes to 7
        segments = len(rig.wal.segment_paths)
        rig.runner.complete()
        # The first step at once, the WAL whole at once; then one step per deferred call.
        assert rig.core.log.snapshot_index == 2 and len(rig.wal.segment_paths) < segments
        [(name, fields)] = rig.events
        assert name == "SnapshotTaken" and fields["log_compacted_to"] == 7
        assert run_steps(rig, deferred) == [4, 6, 7]
        assert rig.core.log.first_index == 8 and rig.core.config_entries == []
        # The member table fell back to the base as the seed's config entry went.
        rig.membership.sync(rig.core.config_state)
        assert rig.membership.members == {1: MemberInfo("n1", "127.0.0.1:8080")}
        rig.put("after")  # the node goes on writing on the compacted log
        assert rig.store.get("after")["value"] == "v-after"
    finally:
        rig.close()


def test_a_newer_snapshot_moves_the_target_of_the_steps_in_progress(tmp_path, monkeypatch):
    rig, deferred = stepped_rig(tmp_path, monkeypatch, 3)
    try:
        assert rig.core.log.snapshot_index == 3 and len(deferred.pending) == 1
        rig.put(*(f"m{i}" for i in range(10)))
        rig.runner.complete()  # snapshot at 20, target 17: the same chain goes on
        assert rig.snapshots.newest.index == 20 and len(deferred.pending) == 1
        assert run_steps(rig, deferred) == [6, 9, 12, 15, 17]
    finally:
        rig.close()


def test_compaction_steps_stop_when_the_log_moved_past_them_or_the_node_stops(tmp_path, monkeypatch):
    rig, deferred = stepped_rig(tmp_path, monkeypatch, 2)
    try:
        assert rig.core.log.snapshot_index == 2
        # As a snapshot installed from a leader would: the log starts past the target.
        rig.step([SnapshotTaken(9, 9)])
        deferred.run_one()
        assert rig.core.log.snapshot_index == 9 and not deferred.pending

        rig.put(*(f"m{i}" for i in range(10)))
        rig.runner.complete()  # snapshot at 20, target 17: one step to 11 so far
        assert rig.core.log.snapshot_index == 11 and len(deferred.pending) == 1
        rig.snapshots.close()
        deferred.run_one()
        assert rig.core.log.snapshot_index == 11 and not deferred.pending
    finally:
        rig.close()


def test_snapshot_count_zero_takes_none(tmp_path):
    rig = Rig(tmp_path, count=0)
    try:
        rig.put(*(f"k{i}" for i in range(30)))
        assert rig.runner.pending == 0 and rig.snapshots.newest is None
    finally:
        rig.close()


def test_the_wal_is_never_compacted_past_the_snapshot_just_taken():
    # A newer snapshot (installed from the leader meanwhile) starts the core's log at 50;
    # it, or the WAL's record of it, may not be durable yet.
    compacted = []
    view = SimpleNamespace(log_start=50)
    wal = SimpleNamespace(compact=lambda upto, keep: compacted.append(("wal", upto)) or 0)
    snapper = Snapshotter(
        data_dir="unused", snapshot_count=10, catchup_entries=3, view=view,
        compact_log=lambda index, upto: compacted.append(("core", upto)), store=KVStore(),
        membership=Membership(1), wal=wal, run=ManualRunner(),
    )
    assert snapper.taking._compact(30) == (50, 0)
    assert compacted == [("wal", 30)]


# --------------------------------------------------------------------------- sending


def test_an_install_snapshot_request_leaves_with_the_newest_snapshot(rig):
    asked = InstallSnapshotRequest(rig.core.current_term, 1, 2, 0, 0, frozenset({1}))
    assert rig.snapshots.fill(asked) is None  # no snapshot yet: dropped, the core resends
    assert "holds no snapshot at or after it" in rig.log.at("WARNING")[0]

    rig.put(*(f"k{i}" for i in range(8)))
    rig.runner.complete()
    newest = rig.snapshots.newest
    asked = InstallSnapshotRequest(rig.core.current_term, 1, 2, rig.core.log.snapshot_index, 1, frozenset({9}))
    filled = rig.snapshots.fill(asked)
    assert (filled.term, filled.source, filled.dest) == (asked.term, 1, 2)
    assert (filled.last_included_index, filled.last_included_term) == (newest.index, newest.term)
    assert filled.voters == {1} and filled.learners == frozenset()
    assert filled.data is newest.data  # no copy per send
    assert rig.snapshots.sent == 1
    assert rig.events[-1] == ("SnapshotSent", {"to": 2, "index": 10, "snapshot_term": newest.term, "bytes": len(newest.data)})
    # Asked for one newer than any this node holds: dropped.
    assert rig.snapshots.fill(InstallSnapshotRequest(5, 1, 2, 11, 5, frozenset({1}))) is None


def test_outbound_fills_snapshots_and_drops_the_ones_it_cannot_fill():
    delivered = []
    heartbeat = AppendEntriesRequest(3, 1, 2, 0, 0, (), 0)
    data = b"state"

    def fill(message):
        return None if message.dest == 3 else InstallSnapshotRequest(3, 1, message.dest, 9, 2, frozenset({1}), data=data)

    outbound = Outbound(lambda dest, messages: delivered.append((dest, messages)), fill_snapshot=fill)
    outbound.on_record(record_of([
        Send(InstallSnapshotRequest(3, 1, 2, 4, 1, frozenset())),
        Send(heartbeat),
        Send(InstallSnapshotRequest(3, 1, 3, 4, 1, frozenset())),
    ]))
    assert delivered == [(2, [InstallSnapshotRequest(3, 1, 2, 9, 2, frozenset({1}), data=data), heartbeat])]
    assert outbound.messages_sent == 2


# --------------------------------------------------------------------------- installing


def leader_snapshot(index: int, keys: dict[str, str], members: str | None = CONTEXT) -> bytes:
    """The data a leader sends: a store at `index` holding `keys`, in the wire form."""
    store = KVStore()
    for i, (key, value) in enumerate(keys.items(), start=1):
        store.apply({"op": "put", "key": key, "value": value, "lease": 0}, index=i)
    store.mark_applied(index)
    return encode_wire(members, store.snapshot())


def request(rig, index: int, data: bytes, term: int | None = None) -> InstallSnapshotRequest:
    return InstallSnapshotRequest(term or rig.core.current_term + 1, 2, 1, index, 5, frozenset({1, 2}), data=data)


def test_screening_loads_the_snapshot_once_and_hands_that_store_to_the_restore(rig, monkeypatch):
    loads = []
    real_load_store = snapshot_install.load_store
    monkeypatch.setattr(snapshot_install, "load_store", lambda *args: loads.append(args) or real_load_store(*args))
    data = leader_snapshot(500, {"a": "1", "b": "2"})
    m = request(rig, 500, data)
    assert rig.snapshots.screen(2, [m]) == [m]
    store = rig.snapshots.store_for(Restore(Snapshot(500, 5, frozenset({1, 2})), m.data))
    assert len(loads) == 1
    assert store is not rig.store and store.applied_index == 500 and store.get("b")["value"] == "2"
    # Not prepared (another object): loaded on the spot, the same state.
    again = rig.snapshots.store_for(Restore(Snapshot(500, 5, frozenset({1, 2})), bytes(bytearray(data))))
    assert len(loads) == 2 and again is not store and again.snapshot() == store.snapshot()


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"garbage", "does not start with a header line"),
        (encode_wire(CONTEXT, b'{"format":"abcd-kv","version":1'), "snapshot is not valid JSON"),
        (encode_wire(CONTEXT, b'{"format":"abcd-kv","version":1}'), "snapshot is not valid: KeyError: 'applied_index'"),
        (leader_snapshot(499, {"a": "1"}), "its state machine is at index 499, not at last_included_index"),
        (leader_snapshot(500, {"a": "1"}, members='{"x":1}'), "not a member table"),
    ],
)
def test_a_malformed_snapshot_from_the_leader_is_refused_before_the_core_sees_it(rig, data, reason):
    before = rig.store.snapshot()
    good = AppendEntriesRequest(rig.core.current_term, 2, 1, 0, 0, (), 0)
    bad = request(rig, 500, data)
    assert rig.snapshots.screen(2, [good, bad]) == [good]
    assert rig.snapshots.refused == 1
    [error] = rig.log.at("ERROR")
    assert error.startswith("refusing an InstallSnapshotRequest from node 2 for index 500") and reason in error
    assert rig.store.snapshot() == before


def test_a_snapshot_the_core_will_not_install_is_not_even_parsed(rig):
    rig.put("a", "b")
    stale = request(rig, 500, b"garbage", term=rig.core.current_term - 1)
    covered = request(rig, rig.core.commit_index - 1, b"garbage")
    index = rig.core.log.last_index
    in_our_log = InstallSnapshotRequest(  # Figure 13 step 6: the core keeps its own log
        rig.core.current_term + 1, 2, 1, index, rig.core.log.term_at(index), frozenset({1, 2}), data=b"garbage"
    )
    rig.core.commit_index -= 1  # as if the entry were not known committed yet
    assert rig.snapshots.screen(2, [stale, covered, in_our_log]) == [stale, covered, in_our_log]
    assert rig.snapshots.refused == 0


def test_an_installed_snapshot_becomes_the_newest_and_its_durability_compacts_the_wal(rig):
    data = leader_snapshot(500, {"a": "1"})
    restore = Restore(Snapshot(500, 5, frozenset({1, 2}), frozenset({3})), data)
    rig.snapshots.on_restored(restore)
    newest = rig.snapshots.newest
    assert (newest.index, newest.term, newest.voters, newest.learners) == (500, 5, {1, 2}, {3})
    assert newest.members == CONTEXT and newest.data is data and newest.path is None

    persist = Persist(9, None, (), restore.snapshot, data)
    saved = []
    rig.snapshots.save_installed(persist, saved.append)
    assert saved == []  # in the worker thread
    rig.runner.complete()
    assert saved == [None]
    loaded = load_latest_snapshot(rig.data_dir)
    assert (loaded.index, loaded.term) == (500, 5)
    assert loaded.meta == {"voters": [1, 2], "learners": [3], "members": CONTEXT}
    assert KVStore.restore(loaded.data).get("a")["value"] == "1"
    assert rig.snapshots.newest.path == loaded.path

    rig.wal.reset_log(500, 5)
    rig.wal.sync()
    rig.snapshots.on_install_durable(persist)
    assert rig.snapshots.installed == 1
    assert len(rig.wal.segment_paths) == 1  # everything before the LOG_RESET is gone
    assert rig.events[-1][0] == "SnapshotInstalled" and rig.events[-1][1]["index"] == 500


# --------------------------------------------------------------------------- starting from a snapshot


def wal_entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, put(f"w{i}")) for i in range(first, last + 1)]


def saved_store(index: int, keys: dict[str, str]) -> bytes:
    store = KVStore()
    for i, (key, value) in enumerate(keys.items(), start=1):
        store.apply({"op": "put", "key": key, "value": value, "lease": 0}, index=i)
    store.mark_applied(index)
    return store.snapshot()


def save(data_dir: str, index: int, data: bytes, term: int = 1) -> str:
    return save_snapshot(data_dir, term, index, data, {"voters": [1], "learners": [], "members": CONTEXT})


def test_recovery_loads_the_newest_snapshot_and_the_wal_after_it(tmp_path):
    data_dir = os.fspath(tmp_path)
    save(data_dir, 5, saved_store(5, {"old": "1"}))
    path = save(data_dir, 10, saved_store(10, {"a": "1", "b": "2"}))
    store = KVStore()
    snapshot, entries = snapshots.recover(data_dir, Recovered(HardState(1), wal_entries(8, 12), 8), store)
    assert (snapshot.index, snapshot.term, snapshot.voters, snapshot.path) == (10, 1, {1}, path)
    assert snapshot.members == CONTEXT and decode_wire(snapshot.data)[0] == CONTEXT
    assert [e.index for e in entries] == [11, 12]
    assert store.applied_index == 10 and store.get("b")["value"] == "2" and store.get("old") is None


def test_recovery_starts_from_a_json_snapshot_an_older_abcd_wrote(tmp_path):
    # Before the packed format a node saved its snapshots as one JSON document
    # (format version 2): a node upgraded in place starts from it, and its newest
    # snapshot, which it sends to followers, is then in the packed format.
    data_dir = os.fspath(tmp_path)
    written = KVStore.restore(saved_store(10, {"a": "1", "b": "2"}))
    old = kv_snapshot.encode_json(written.capture())
    assert old.startswith(b'{"format":"abcd-kv","version":2')
    save(data_dir, 10, old)
    store = KVStore()
    snapshot, entries = snapshots.recover(data_dir, Recovered(HardState(1), wal_entries(8, 12), 8), store)
    assert store.applied_index == 10 and store.get("b")["value"] == "2" and [e.index for e in entries] == [11, 12]
    assert snapshot_format.load_store(KVStore(), decode_wire(snapshot.data)[1]).snapshot() == written.snapshot()


def test_a_snapshot_is_saved_and_sent_in_the_packed_format(rig):
    rig.put(*(f"k{i}" for i in range(10)))
    rig.runner.complete()
    loaded = load_latest_snapshot(rig.data_dir)
    assert loaded.data.startswith(b"ABCD-KV\0")
    assert decode_wire(rig.snapshots.newest.data)[1] == loaded.data


def test_recovery_without_a_snapshot_uses_the_whole_wal(tmp_path):
    store = KVStore()
    snapshot, entries = snapshots.recover(os.fspath(tmp_path), Recovered(HardState(1), wal_entries(1, 3), 1), store)
    assert snapshot is None and len(entries) == 3 and store.applied_index == 0


def save_two_with_the_newest_damaged(data_dir: str) -> str:
    """Snapshots at index 5 (intact) and 10 (its last bytes overwritten); the latter's path."""
    save(data_dir, 5, saved_store(5, {"a": "1"}))
    damaged = save(data_dir, 10, saved_store(10, {"a": "2"}))
    with open(damaged, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        f.write(b"XXX")
    return damaged


def test_a_damaged_newest_snapshot_is_passed_over_with_a_warning_when_the_wal_covers_it(tmp_path):
    data_dir = os.fspath(tmp_path)
    damaged = save_two_with_the_newest_damaged(data_dir)
    log = ListLogger()
    snapshot, entries = snapshots.recover(data_dir, Recovered(HardState(1), wal_entries(4, 12), 4), KVStore(), log)
    assert snapshot.index == 5 and [e.index for e in entries] == list(range(6, 13))
    [warning] = log.at("WARNING")
    assert os.path.basename(damaged) in warning and "fails its CRC check" in warning


def test_a_damaged_snapshot_the_wal_cannot_stand_in_for_stops_the_start_naming_both_files(tmp_path):
    data_dir = os.fspath(tmp_path)
    damaged = save_two_with_the_newest_damaged(data_dir)
    with pytest.raises(StorageError) as raised:
        snapshots.recover(data_dir, Recovered(HardState(1), wal_entries(9, 12), 9), KVStore(), ListLogger())
    message = str(raised.value)
    assert "00000000000000000005.snap" in message and "entries 6..8 are missing" in message
    assert os.path.basename(damaged) in message and "fails its CRC check" in message


def test_the_only_snapshot_damaged_stops_the_start_naming_it(tmp_path):
    damaged = save(os.fspath(tmp_path), 10, saved_store(10, {"a": "2"}))
    with open(damaged, "r+b") as f:
        f.write(b"NOTASNAP")
    with pytest.raises(StorageError, match="no intact snapshot to start from") as raised:
        snapshots.recover(os.fspath(tmp_path), Recovered(HardState(1), [], 11), KVStore())
    assert os.path.basename(damaged) in str(raised.value) and "bad magic" in str(raised.value)


def test_a_snapshot_whose_state_machine_does_not_load_stops_the_start_naming_it(tmp_path):
    path = save(os.fspath(tmp_path), 10, b'{"format":"abcd-kv","version":1}')  # intact file, bad contents
    with pytest.raises(StorageError) as raised:
        snapshots.recover(os.fspath(tmp_path), Recovered(HardState(1), [], 11), KVStore())
    assert str(raised.value).startswith(f"{path}: snapshot is not valid: KeyError: 'applied_index'")
    other = save(os.fspath(tmp_path), 20, saved_store(19, {}))
    with pytest.raises(StorageError, match="named for index 20, but its state machine is at index 19") as raised:
        snapshots.recover(os.fspath(tmp_path), Recovered(HardState(1), [], 21), KVStore())
    assert other in str(raised.value)


def test_a_wal_that_conflicts_with_an_installed_snapshot_at_its_index_is_discarded_after_it(tmp_path):
    # The leader's snapshot (term 3) was saved, then the node crashed before the WAL
    # recorded the LOG_RESET: the WAL still holds the old log, whose entry 10 is of term 1.
    data_dir = os.fspath(tmp_path)
    save(data_dir, 10, saved_store(10, {"a": "1"}), term=3)
    log = ListLogger()
    snapshot, entries = snapshots.recover(data_dir, Recovered(HardState(3), wal_entries(1, 14), 1), KVStore(), log)
    assert snapshot.term == 3 and entries == []
    assert "discarding the WAL's 4 entries after it" in log.at("WARNING")[0]


# --------------------------------------------------------------------------- the node wiring


def test_node_snapshot_raft_view():
    s = NodeSnapshot(7, 2, frozenset({1, 2}), frozenset({3}), None, b"")
    assert s.raft_snapshot() == Snapshot(7, 2, frozenset({1, 2}), frozenset({3}))
