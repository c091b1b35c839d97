"""The WAL sink: group commit, acknowledgement only after fsync, failure is fatal."""
import asyncio
import threading

from abcd.node.wal_sink import AdaptiveSyncRunner, WALSink, executor_sync_runner
from abcd.raft.effects import Persist, Send, Trace
from abcd.raft.messages import Entry, HardState, RequestVoteResponse, Snapshot

from node_fakes import ManualSync, RecordingWAL, record_of


def persist(seq):
    return Persist(seq, HardState(seq, None), (Entry(1, seq),))


def make(wal=None):
    sync = ManualSync()
    acks, failures = [], []
    sink = WALSink(wal or RecordingWAL(), sync, acks.append, failures.append)
    return sink, sync, acks, failures


def test_nothing_is_acknowledged_before_its_fsync_completes():
    sink, sync, acks, _ = make()
    sink.on_record(record_of([Send(RequestVoteResponse(1, 1, 2, True)), persist(1), Trace("x")]))
    assert sync.in_flight == 1
    assert acks == []
    sync.complete()
    assert acks == [1]
    assert sink.idle


def test_records_written_during_an_fsync_wait_for_the_next_one_which_covers_them_all():
    wal = RecordingWAL()
    sink, sync, acks, _ = make(wal)
    sink.write(persist(1))
    sink.write(persist(2))  # joins nothing: the fsync for 1 already runs
    sink.write(persist(3))
    assert sync.in_flight == 1
    sync.complete()
    # The first fsync started before 2 and 3 were written, so it acknowledges only 1...
    assert acks == [1]
    # ...and a single second fsync covers both.
    assert sync.in_flight == 1
    sync.complete()
    assert acks == [1, 3]
    assert wal.syncs == 2
    assert sync.in_flight == 0


def test_one_fsync_at_a_time():
    sink, sync, acks, _ = make()
    for seq in range(1, 6):
        sink.write(persist(seq))
        assert sync.in_flight == 1


def test_a_failed_fsync_is_fatal_and_acknowledges_nothing():
    sink, sync, acks, failures = make()
    sink.write(persist(1))
    sink.write(persist(2))
    error = OSError("EIO")
    sync.complete(error)
    assert acks == []
    assert failures == [error]
    # Nothing more is written or synced after a failure.
    sink.write(persist(3))
    assert sync.in_flight == 0


def test_a_failed_write_is_fatal():
    sink, sync, acks, failures = make(RecordingWAL(fail_write=True))
    sink.write(persist(1))
    assert len(failures) == 1 and "disk full" in str(failures[0])
    assert sync.in_flight == 0 and acks == []


def test_executor_runner_reports_back_on_the_loop_and_wait_idle_returns():
    async def body():
        loop = asyncio.get_running_loop()
        acks = []
        wal = RecordingWAL()
        sink = WALSink(wal, executor_sync_runner(loop), acks.append, lambda e: None)
        sink.write(persist(1))
        sink.write(persist(2))
        await asyncio.wait_for(sink.wait_idle(), 5)
        assert acks[-1] == 2
        assert sink.fsyncs == len(acks) and wal.syncs == len(acks)

    asyncio.run(body())


def test_adaptive_runner_syncs_on_the_loop_after_what_the_turn_scheduled():
    async def body():
        loop = asyncio.get_running_loop()
        order, results = [], []
        runner = AdaptiveSyncRunner(loop, slow_seconds=0.5)

        def fsync():
            order.append(("fsync", threading.get_ident()))

        runner(fsync, results.append)
        assert order == []  # never inside the call: the sink's state must be settled first
        # A callback the same turn schedules later (a transport writer woken by the
        # step's messages) still runs before the fsync.
        loop.call_soon(lambda: order.append(("writer", threading.get_ident())))
        await wait_until(lambda: results)
        assert [what for what, _ in order] == ["writer", "fsync"]
        assert order[1][1] == threading.get_ident()  # on the loop's own thread
        assert results == [None] and runner.inline_syncs == 1

    asyncio.run(body())


def test_adaptive_runner_moves_slow_fsyncs_to_a_thread_and_back():
    async def body():
        loop = asyncio.get_running_loop()
        now = [0.0]
        cost = [0.010]  # seconds each fsync takes, on the fake clock
        threads, results = [], []
        runner = AdaptiveSyncRunner(loop, slow_seconds=0.002, clock=lambda: now[0])

        def fsync():
            threads.append(threading.get_ident())
            now[0] += cost[0]

        for i in range(8):  # the moving average passes 2 ms at the third 10 ms fsync
            runner(fsync, results.append)
            await wait_until(lambda: len(results) == i + 1)
        assert threads[0] == threading.get_ident()
        assert threads[-1] != threading.get_ident() and runner.threaded_syncs == 5
        cost[0] = 0.0001  # the disk got fast again: back on the loop once the average drops
        for i in range(8, 48):
            runner(fsync, results.append)
            await wait_until(lambda: len(results) == i + 1)
        assert threads[-1] == threading.get_ident() and runner.inline
        assert results == [None] * len(threads)

    asyncio.run(body())


def test_adaptive_runner_reports_a_failed_fsync():
    async def body():
        loop = asyncio.get_running_loop()
        results = []

        def fsync():
            raise OSError(5, "Input/output error")

        AdaptiveSyncRunner(loop)(fsync, results.append)
        await wait_until(lambda: results)
        assert isinstance(results[0], OSError)

    asyncio.run(body())


# ----------------------------------------------------------------------------- installed snapshots


def installing(seq, index, entries=()):
    return Persist(seq, HardState(4, 2), tuple(entries), Snapshot(index, 3, frozenset({1, 2})), b"snapshot bytes")


class SnapshotSaves:
    """A snapshot writer whose saves complete when the test says so, in the shared call log."""

    def __init__(self, calls):
        self.calls = calls
        self.pending = []

    def __call__(self, persist, done):
        self.calls.append(("save", persist.snapshot.last_included_index))
        self.pending.append(done)

    def complete(self, error=None):
        self.pending.pop(0)(error)


def make_installing():
    calls = []
    sync, saves = ManualSync(), SnapshotSaves(calls)
    acks, failures, durable = [], [], []
    wal = RecordingWAL(calls)
    sink = WALSink(wal, sync, acks.append, failures.append, save_snapshot=saves, on_snapshot_durable=durable.append)
    return sink, wal, sync, saves, calls, acks, failures, durable


def test_a_snapshot_is_saved_before_the_log_reset_and_later_persists_wait_for_it_in_order():
    sink, wal, sync, saves, calls, acks, _, durable = make_installing()
    snapshot_persist = installing(1, 100, [Entry(4, 101)])
    sink.on_record(record_of([snapshot_persist]))
    sink.write(persist(2))  # the next step's write must not overtake the snapshot
    assert calls == [("save", 100)] and sync.in_flight == 0 and not sink.idle
    saves.complete()
    # Figure 13 order: snapshot durable, then the LOG_RESET, then hard state and entries.
    assert calls == [("save", 100), ("wal.reset_log", 100, 3), ("wal.write", 1), ("wal.write", 2)]
    assert acks == [] and durable == []
    sync.complete()
    assert acks == [1]  # the fsync covering the reset and Persist 1 started before 2 was written
    assert durable == [snapshot_persist]
    sync.complete()
    assert acks == [1, 2] and sink.idle and durable == [snapshot_persist]


def test_a_second_snapshot_waits_for_the_first_to_be_saved():
    sink, wal, sync, saves, calls, acks, _, durable = make_installing()
    sink.write(installing(1, 100))
    sink.write(persist(2))
    sink.write(installing(3, 200))
    sink.write(persist(4))
    saves.complete()
    assert calls == [("save", 100), ("wal.reset_log", 100, 3), ("wal.write", 1), ("wal.write", 2), ("save", 200)]
    saves.complete()
    assert calls[5:] == [("wal.reset_log", 200, 3), ("wal.write", 3), ("wal.write", 4)]
    while sync.in_flight:
        sync.complete()
    assert acks[-1] == 4 and [p.seq for p in durable] == [1, 3]


def test_a_failed_snapshot_save_is_fatal_and_nothing_after_it_is_written():
    sink, wal, sync, saves, calls, acks, failures, _ = make_installing()
    sink.write(installing(1, 100))
    sink.write(persist(2))
    error = OSError(28, "No space left on device")
    saves.complete(error)
    assert failures == [error] and calls == [("save", 100)] and acks == []
    sink.write(persist(3))
    assert calls == [("save", 100)]


def test_a_sink_without_a_snapshot_writer_fails_on_a_snapshot():
    sink, sync, acks, failures = make()
    sink.write(installing(1, 100))
    assert len(failures) == 1 and "no snapshot store" in str(failures[0])


def test_wait_idle_waits_for_a_snapshot_being_saved():
    async def body():
        sink, wal, sync, saves, calls, acks, _, _ = make_installing()
        sink.write(installing(1, 100))
        idle = asyncio.ensure_future(sink.wait_idle())
        await asyncio.sleep(0)
        assert not idle.done()
        saves.complete()
        await asyncio.sleep(0)
        assert not idle.done()  # written, not yet durable
        sync.complete()
        await asyncio.wait_for(idle, 5)
        assert acks == [1]

    asyncio.run(body())


async def wait_until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0)
