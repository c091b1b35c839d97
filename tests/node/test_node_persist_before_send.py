"""Durability before speech, at the shell: a real core, the real pipeline and WAL sink.

A follower that receives entries must not acknowledge them before they are fsynced
(thesis §3.8).  The core holds the acknowledgement until Persisted; the shell's part
is to report Persisted only after the fsync, through a later step.
"""
import pytest
from reactivex.testing import TestScheduler

from abcd.node.outbound import Outbound
from abcd.node.pipeline import Pipeline
from abcd.node.wal_sink import WALSink
from abcd.raft.core import RaftCore
from abcd.raft.messages import AppendEntriesRequest, AppendEntriesResponse, Entry, RequestVoteRequest, RequestVoteResponse

from node_fakes import ManualSync, RecordingWAL


def build(frames_first: bool = False):
    """The pipeline with the WAL sink and outbound; `frames_first` puts outbound first,
    as the node does: the gating must not depend on the order of the sinks."""
    scheduler = TestScheduler()
    core = RaftCore(2, voters=(1, 2, 3), seed=1)
    pipeline = Pipeline(core.step_many, tick_seconds=1000.0)
    calls = []
    wal = RecordingWAL(calls)
    sync = ManualSync()
    sink = WALSink(wal, sync, pipeline.persisted, on_failure=lambda e: calls.append(("failed", e)))
    outbound = Outbound(lambda dest, messages: calls.append(("send", dest, messages)))
    sinks = [outbound.on_record, sink.on_record] if frames_first else [sink.on_record, outbound.on_record]
    pipeline.start(scheduler, sinks)
    return scheduler, pipeline, sync, calls


def sends(calls):
    return [c for c in calls if c[0] == "send"]


@pytest.mark.parametrize("frames_first", [False, True], ids=["wal-first", "frames-first"])
def test_append_acknowledgement_waits_for_the_fsync(frames_first):
    scheduler, pipeline, sync, calls = build(frames_first)
    entries = (Entry(1, 1, b"a"), Entry(1, 2, b"b"))
    request = AppendEntriesRequest(1, 1, 2, 0, 0, entries, 0)
    scheduler.schedule_absolute(1.0, lambda *_: pipeline.on_frame(1, [request]))
    scheduler.advance_to(2.0)
    assert ("wal.write", 1) in calls
    assert sends(calls) == []  # written, not yet durable: nothing said
    scheduler.schedule_absolute(3.0, lambda *_: sync.complete())
    scheduler.advance_to(4.0)
    [(_, dest, messages)] = sends(calls)
    assert dest == 1
    assert messages == [AppendEntriesResponse(1, 2, 1, True, 2)]
    assert calls.index(("wal.sync",)) < calls.index(sends(calls)[0])


@pytest.mark.parametrize("frames_first", [False, True], ids=["wal-first", "frames-first"])
def test_vote_grant_waits_for_the_fsync_of_the_vote(frames_first):
    scheduler, pipeline, sync, calls = build(frames_first)
    request = RequestVoteRequest(5, 3, 2, 0, 0)
    scheduler.schedule_absolute(1.0, lambda *_: pipeline.on_frame(3, [request]))
    scheduler.advance_to(2.0)
    assert sends(calls) == []
    assert sync.in_flight == 1
    scheduler.schedule_absolute(3.0, lambda *_: sync.complete())
    scheduler.advance_to(4.0)
    assert sends(calls) == [("send", 3, [RequestVoteResponse(5, 2, 3, True)])]
