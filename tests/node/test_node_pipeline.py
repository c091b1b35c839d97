"""Marble tests of the node's pipeline wiring in virtual time (TestScheduler).

They pin what the pipeline promises: one core step per turn with every input of
that turn, ticks on time, the effects stream shared (one step feeds every sink),
sinks called in the order they are given (the node gives the transport before the
WAL, docs/architecture.md says why), and Send effects grouped per peer into one
transport call.
"""
from reactivex.testing import TestScheduler

from abcd.net import Faults
from abcd.node.outbound import Outbound
from abcd.node.pipeline import Pipeline
from abcd.node.wal_sink import WALSink
from abcd.raft.effects import Persist, Send, Trace
from abcd.raft.messages import AppendEntriesResponse, HardState, Persisted, RequestVoteResponse, Tick

from node_fakes import ManualSync, RecordingWAL


def response(source, dest, index=1):
    return AppendEntriesResponse(1, source, dest, True, index)


class FakeCore:
    """Records each step_many call; answers with the effects a test queued."""

    def __init__(self):
        self.steps = []
        self.next_effects = []

    def step_many(self, events):
        self.steps.append(list(events))
        effects, self.next_effects = self.next_effects, []
        return effects


def started(tick_seconds=10.0, faults=None):
    scheduler = TestScheduler()
    core = FakeCore()
    pipeline = Pipeline(core.step_many, tick_seconds=tick_seconds, faults=faults)
    return scheduler, core, pipeline


def ignore(effects):
    pass


def at(scheduler, time, action):
    scheduler.schedule_absolute(time, lambda *_: action())


def test_inputs_of_one_turn_are_stepped_together_in_arrival_order():
    scheduler, core, pipeline = started()
    pipeline.start(scheduler, [ignore])
    frame = [response(2, 1), response(2, 1, 2)]

    def feed():
        assert pipeline.started()
        pipeline.on_frame(2, frame)
        pipeline.push_requests(["client-write"])
        pipeline.persisted(7)

    at(scheduler, 1.0, feed)
    at(scheduler, 2.0, lambda: pipeline.push_requests(["later"]))
    scheduler.advance_to(5.0)
    assert core.steps == [frame + ["client-write", Persisted(7)], ["later"]]


def test_ticks_arrive_every_tick_interval_as_their_own_step():
    scheduler, core, pipeline = started(tick_seconds=0.1)
    times = []
    pipeline.start(scheduler, [lambda effects: times.append(scheduler.clock)])
    scheduler.advance_to(0.35)
    assert core.steps == [[Tick()], [Tick()], [Tick()]]
    assert [round(t, 6) for t in times] == [0.1, 0.2, 0.3]


def test_a_tick_and_a_frame_in_the_same_turn_share_one_step():
    scheduler, core, pipeline = started(tick_seconds=1.0)
    pipeline.start(scheduler, [ignore])
    at(scheduler, 1.0, lambda: pipeline.on_frame(3, [response(3, 1)]))
    scheduler.advance_to(1.5)
    assert len(core.steps) == 1
    assert sorted(map(repr, core.steps[0])) == sorted(map(repr, [Tick(), response(3, 1)]))


def test_the_effects_stream_is_shared_one_step_feeds_every_sink():
    scheduler, core, pipeline = started()
    seen = {"a": [], "b": [], "c": []}
    pipeline.start(scheduler, [seen["a"].append, seen["b"].append, seen["c"].append])
    core.next_effects = [Trace("X")]
    at(scheduler, 1.0, lambda: pipeline.push_requests(["w"]))
    scheduler.advance_to(2.0)
    assert len(core.steps) == 1
    assert seen["a"] == seen["b"] == seen["c"] == [[Trace("X")]]


def test_wal_write_happens_before_the_transport_send_of_the_same_batch():
    scheduler, core, pipeline = started()
    calls = []
    wal = RecordingWAL(calls)
    sink = WALSink(wal, ManualSync(), pipeline.persisted, on_failure=lambda e: None)
    outbound = Outbound(lambda dest, messages: calls.append(("send", dest, len(messages))))
    pipeline.start(scheduler, [sink.on_effects, outbound.on_effects])
    # The core lists sends first and the Persist last (its flush order); the WAL sink
    # still writes before any message of the batch leaves.
    core.next_effects = [Send(response(1, 2)), Send(response(1, 3)), Persist(1, HardState(1, None), ())]
    at(scheduler, 1.0, lambda: pipeline.push_requests(["w"]))
    scheduler.advance_to(2.0)
    assert calls == [("wal.write", 1), ("send", 2, 1), ("send", 3, 1)]


def test_sends_are_grouped_per_peer_one_transport_call_each():
    scheduler, core, pipeline = started()
    sent = []
    outbound = Outbound(lambda dest, messages: sent.append((dest, list(messages))))
    pipeline.start(scheduler, [outbound.on_effects])
    vote = RequestVoteResponse(1, 1, 3, True)
    core.next_effects = [Send(response(1, 2, 1)), Send(vote), Trace("x"), Send(response(1, 2, 2))]
    at(scheduler, 1.0, lambda: pipeline.push_requests(["w"]))
    scheduler.advance_to(2.0)
    assert sent == [(2, [response(1, 2, 1), response(1, 2, 2)]), (3, [vote])]
    assert outbound.messages_sent == 3


def test_storage_acknowledgement_comes_back_as_a_later_step():
    scheduler, core, pipeline = started()
    sync = ManualSync()
    sink = WALSink(RecordingWAL(), sync, pipeline.persisted, on_failure=lambda e: None)
    pipeline.start(scheduler, [sink.on_effects])
    core.next_effects = [Persist(1, HardState(2, 1), ())]
    at(scheduler, 1.0, lambda: pipeline.push_requests(["vote"]))
    at(scheduler, 2.0, sync.complete)
    scheduler.advance_to(3.0)
    assert core.steps == [["vote"], [Persisted(1)]]


def test_a_partitioned_peer_is_not_heard():
    faults = Faults(partition=frozenset({3}))
    scheduler, core, pipeline = started(faults=faults)
    pipeline.start(scheduler, [ignore])
    at(scheduler, 1.0, lambda: pipeline.on_frame(3, [response(3, 1)]))
    at(scheduler, 1.0, lambda: pipeline.on_frame(2, [response(2, 1)]))
    scheduler.advance_to(2.0)
    assert core.steps == [[response(2, 1)]]
    assert faults.dropped_by_partition == 1


def test_stop_ends_stepping():
    scheduler, core, pipeline = started(tick_seconds=1.0)
    pipeline.start(scheduler, [ignore])
    scheduler.advance_to(1.5)
    pipeline.stop()
    scheduler.advance_to(5.0)
    assert core.steps == [[Tick()]]
