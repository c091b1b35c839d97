"""The WAL sink: group commit, acknowledgement only after fsync, failure is fatal."""
import asyncio
import threading

from abcd.node.wal_sink import AdaptiveSyncRunner, WALSink, executor_sync_runner
from abcd.raft.effects import Persist, Send, Trace
from abcd.raft.messages import Entry, HardState, RequestVoteResponse

from node_fakes import ManualSync, RecordingWAL


def persist(seq):
    return Persist(seq, HardState(seq, None), (Entry(1, seq),))


def make(wal=None):
    sync = ManualSync()
    acks, failures = [], []
    sink = WALSink(wal or RecordingWAL(), sync, acks.append, failures.append)
    return sink, sync, acks, failures


def test_nothing_is_acknowledged_before_its_fsync_completes():
    sink, sync, acks, _ = make()
    sink.on_effects([Send(RequestVoteResponse(1, 1, 2, True)), persist(1), Trace("x")])
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


async def wait_until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0)
