"""The log stream: role changes at INFO; commits at INFO at most once a second."""
from abcd.node.events import EventHub
from abcd.node.tracelog import TraceLog
from abcd.raft.effects import Trace

from node_fakes import record_of


class Recorder:
    def __init__(self):
        self.records = []

    def bind(self, **extra):
        recorder = self

        class Bound:
            def log(self, level, fmt, *args):
                recorder.records.append((level, extra["event"]))

        return Bound()


def commit(index):
    return Trace("AdvanceCommitIndex", {"term": 2, "role": "leader", "commit_index": index})


def test_commits_reach_info_once_a_second_and_elections_always():
    now = [100.0]
    logger = Recorder()
    log = TraceLog(logger, EventHub(), node_id=1, clock=lambda: now[0])
    log._debug = False  # as with the default INFO level
    log.on_record(record_of([Trace("BecomeLeader", {"term": 2, "role": "leader"}), commit(1), commit(2), commit(3)]))
    now[0] += 1.5
    log.on_record(record_of([commit(4), commit(5)]))
    assert logger.records == [
        ("INFO", "BecomeLeader"),
        ("INFO", "AdvanceCommitIndex"),
        ("INFO", "AdvanceCommitIndex"),
    ]


def test_the_node_annotates_a_timeout_with_its_election_timer_in_ms_for_watchers():
    hub = EventHub()
    sub = hub.subscribe()
    log = TraceLog(
        Recorder(), hub, node_id=3, clock=lambda: 5.0,
        annotate={"Timeout": lambda: {"election_elapsed_ms": 1300, "election_timeout_ms": 1300}},
    )
    timeout = Trace("Timeout", {"term": 4, "role": "follower"})
    log.on_record(record_of([timeout, Trace("BecomePreCandidate", {"term": 4, "role": "pre_candidate"})]))
    published = list(sub.queue)
    assert published[0] == {
        "type": "trace", "time": 5.0, "node": 3, "event": "Timeout", "term": 4, "role": "follower",
        "fields": {"election_elapsed_ms": 1300, "election_timeout_ms": 1300},
    }
    assert published[1]["fields"] == {}  # only the named traces get the node's fields
    assert timeout.fields == {"term": 4, "role": "follower"}  # the core's trace is left as it was


def test_watchers_get_one_commit_advance_per_100_ms_the_latest_with_how_many_it_stands_for():
    now = [10.0]
    hub = EventHub()
    sub = hub.subscribe()
    log = TraceLog(Recorder(), hub, node_id=1, clock=lambda: now[0])
    log.on_record(record_of([commit(1)]))  # the first is sent at once
    for index in range(2, 8):  # a burst within the interval: held back, the latest kept
        now[0] += 0.01
        log.on_record(record_of([commit(index)]))
    log.on_record(record_of([Trace("BecomeFollower", {"term": 3, "role": "follower", "leader": 2})]))  # others are never held
    assert [(e["event"], e["fields"]) for e in sub.queue] == [
        ("AdvanceCommitIndex", {"commit_index": 1, "advances": 1}),
        ("BecomeFollower", {"leader": 2}),
    ]
    sub.queue.clear()
    log.flush()  # the node's 100 ms timer: the one held back leaves, saying it stands for 6
    assert [(e["event"], e["fields"]) for e in sub.queue] == [("AdvanceCommitIndex", {"commit_index": 7, "advances": 6})]
    sub.queue.clear()
    log.flush()  # nothing held back: nothing sent
    now[0] += 0.2
    log.on_record(record_of([commit(8)]))  # a quiet spell: sent at once again
    assert [e["fields"] for e in sub.queue] == [{"commit_index": 8, "advances": 1}]
