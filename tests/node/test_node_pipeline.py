"""Marble tests of the node's pipeline wiring in virtual time (TestScheduler).

They pin what the pipeline promises: one core step per turn with every input of
that turn, ticks on time, the record stream shared (one step feeds every sink),
the node's sinks called in the order the node gives them (its view first, the
transport before the WAL, replies before the applier: docs/architecture.md says
why), and a step's messages grouped per peer into one transport call.
"""
from types import SimpleNamespace

from reactivex.testing import TestScheduler

from abcd.net import Faults
from abcd.node.node import Node
from abcd.node.outbound import Outbound
from abcd.node.pipeline import Pipeline
from abcd.node.wal_sink import WALSink
from abcd.raft.effects import Persist, Send, Trace
from abcd.raft.messages import AppendEntriesResponse, HardState, Persisted, RequestVoteResponse, Tick

from node_fakes import ManualSync, RecordingWAL, record_of


def response(source, dest, index=1):
    return AppendEntriesResponse(1, source, dest, True, index)


class FakeCore:
    """Records each step_many call; answers with a record of the effects a test queued."""

    def __init__(self):
        self.steps = []
        self.next_effects = []

    def step_many(self, events):
        self.steps.append(list(events))
        effects, self.next_effects = self.next_effects, []
        return record_of(effects)


def started(tick_seconds=10.0, faults=None):
    scheduler = TestScheduler()
    core = FakeCore()
    pipeline = Pipeline(core.step_many, tick_seconds=tick_seconds, faults=faults)
    return scheduler, core, pipeline


def ignore(record):
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
    pipeline.start(scheduler, [lambda record: times.append(scheduler.clock)])
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


def test_the_record_stream_is_shared_one_step_feeds_every_sink():
    scheduler, core, pipeline = started()
    seen = {"a": [], "b": [], "c": []}
    pipeline.start(scheduler, [seen["a"].append, seen["b"].append, seen["c"].append])
    core.next_effects = [Trace("X")]
    at(scheduler, 1.0, lambda: pipeline.push_requests(["w"]))
    scheduler.advance_to(2.0)
    assert len(core.steps) == 1
    (record,) = seen["a"]
    assert seen["b"] == seen["c"] == [record] and record.traces == [Trace("X")]


def node_sinks(calls: list, pipeline: Pipeline) -> list:
    """The node's own sink list (Node._record_sinks), over sinks that note their turn;
    the outbound and WAL sinks are the real ones, over a recording transport and WAL."""

    def noting(name):
        return lambda record: calls.append(name)

    wal = WALSink(RecordingWAL(calls), ManualSync(), pipeline.persisted, on_failure=lambda e: None)
    outbound = Outbound(lambda dest, messages: calls.append(("send", dest, len(messages))))
    node = SimpleNamespace(
        _begin_step=noting("begin"),
        _learn=noting("view"),
        outbound=outbound,
        wal_sink=wal,
        requests=SimpleNamespace(on_record=noting("replies")),
        applier=SimpleNamespace(on_record=noting("applier")),
        snapshots=SimpleNamespace(on_record=noting("snapshots")),
        trace_log=SimpleNamespace(on_record=noting("trace log")),
        _after_step=noting("after step"),
        _guard=lambda sink, fatal=True: sink,
    )
    return Node._record_sinks(node)


def test_the_node_executes_a_record_in_its_fixed_order_frames_before_the_wal_write():
    """Frames leave before the WAL write of the same step (a leader's AppendEntries
    need not wait for its own disk; the core holds every message that promises durable
    state until Persisted), after the view has learnt the step's leader and members,
    and the replies reach their requests before the applier answers them."""
    scheduler, core, pipeline = started()
    calls = []
    pipeline.start(scheduler, node_sinks(calls, pipeline))
    core.next_effects = [Send(response(1, 2)), Send(response(1, 3)), Persist(1, HardState(1, None), ())]
    at(scheduler, 1.0, lambda: pipeline.push_requests(["w"]))
    scheduler.advance_to(2.0)
    assert calls == [
        "begin", "view", ("send", 2, 1), ("send", 3, 1), ("wal.write", 1),
        "replies", "applier", "snapshots", "trace log", "after step",
    ]


def test_sends_are_grouped_per_peer_one_transport_call_each():
    scheduler, core, pipeline = started()
    sent = []
    outbound = Outbound(lambda dest, messages: sent.append((dest, list(messages))))
    pipeline.start(scheduler, [outbound.on_record])
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
    pipeline.start(scheduler, [sink.on_record])
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
