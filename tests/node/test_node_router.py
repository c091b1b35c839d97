"""The request router: a request is routed to the leader's pipeline, to the leader over
the forwarding link or parked, routed again when it comes back, and answered once."""
import orjson
import pytest

from abcd.kv import KVStore
from abcd.node.applier import Applier
from abcd.node.auth import Gate
from abcd.node.leases import LeaseTimers
from abcd.node.router import RequestRouter
from abcd.raft.effects import Accepted, Apply, NotLeader, ReadReady, Reply
from abcd.raft.messages import Entry, Propose, ReadIndex
from node_fakes import record_of

TIMEOUT = 5.0
PARK = 0.4
HEARTBEAT = 0.01


class Clock:
    def __init__(self):
        self.now = 100.0

    def time(self):
        return self.now


class Forwarder:
    """Stands for forward.Forwarder: records what it was given."""

    def __init__(self):
        self.sent = []

    def forward(self, address, item):
        self.sent.append((address, item))


class Rig:
    """A router on a node whose leadership the test sets: `leader` (None: none known)
    and `me` (this node's id); member 2 is at 10.0.0.2, member 3 has no address known."""

    def __init__(self, *, leader=None):
        self.me = 1
        self.leader = leader
        self.clock = Clock()
        self.store = KVStore()
        self.router = RequestRouter(
            store=self.store,
            gate=Gate(self.store, "c"),
            leases=LeaseTimers(retry_seconds=1.0),
            loop=self.clock,
            is_leader=lambda: self.leader == self.me,
            leader_id=lambda: self.leader,
            address_of={1: "10.0.0.1", 2: "10.0.0.2"}.get,
            node_id=self.me,
            request_timeout=TIMEOUT,
            park_seconds=PARK,
            retry_seconds=HEARTBEAT,
        )
        self.pushed = []
        self.router.push = self.pushed.extend
        self.forwarder = self.router.forwarder = Forwarder()
        self.applier = Applier(self.store, self.router.requests)
        self.answers = {}

    def send(self, *requests, forwarded=False):
        """Client requests, one frame; each request's answers are collected under its key."""
        frame = []
        for request in requests:
            answers = self.answers.setdefault(request["key"], [])
            frame.append((request, answers.append))
        self.router.handle_many(frame, forwarded=forwarded)

    def step(self, *replies):
        """The pipeline steps what was pushed; the core answers with `replies(events)`."""
        batch, self.pushed[:] = list(self.pushed), []
        events = self.router.requests.to_events(batch)
        self.router.requests.on_record(record_of([Reply(e.tag, reply) for e, reply in zip(events, replies)]))
        self.router.after_step()
        return events

    def tick(self, seconds):
        self.clock.now += seconds
        self.router.on_tick(self.clock.now)


def put(key, value="v"):
    return {"op": "put", "key": key, "value": value}


def test_a_request_parked_while_no_leader_is_known_goes_to_the_leader_once_one_is():
    rig = Rig(leader=None)
    rig.send(put("a"))
    assert rig.router.parked == 1 and rig.pushed == [] and rig.forwarder.sent == []
    rig.router.after_step()  # a step that brings no leader: still parked
    assert rig.router.parked == 1
    rig.leader = 2
    rig.router.after_step()
    [(address, item)] = rig.forwarder.sent
    assert address == "10.0.0.2" and item.request["key"] == "a" and rig.router.parked == 0
    assert rig.answers["a"] == []


def test_a_parked_request_goes_into_the_pipeline_when_this_node_becomes_leader():
    rig = Rig(leader=None)
    rig.send(put("a"))
    rig.leader = rig.me
    rig.router.after_step()
    [item] = rig.pushed
    assert item.request["key"] == "a" and rig.forwarder.sent == []


def test_a_leader_known_without_an_address_keeps_the_request_parked_then_503():
    rig = Rig(leader=3)
    rig.send(put("a"))
    assert rig.router.parked == 1
    rig.tick(PARK - 0.01)
    assert rig.answers["a"] == [] and rig.router.parked == 1
    rig.tick(0.02)
    [answer] = rig.answers["a"]
    assert answer.status == 503 and answer.body["code"] == "no_leader"
    assert "node 3 leads but cannot be reached" in answer.body["error"]
    rig.tick(TIMEOUT)  # past the deadline: no second answer
    assert len(rig.answers["a"]) == 1 and rig.router.parked == 0


def test_writes_of_a_frame_on_the_leader_are_pushed_as_one_item_list_and_answered_on_apply():
    rig = Rig(leader=1)
    rig.send(put("a", "1"), put("b", "2"))
    assert [item.request["key"] for item in rig.pushed] == ["a", "b"]
    [propose] = rig.step(Accepted(term=2, first_index=1, last_index=2))
    assert type(propose) is Propose
    rig.applier.apply([Entry(2, 1, propose.commands[0]), Entry(2, 2, propose.commands[1])])
    assert rig.answers["a"][0].status == 200 and rig.answers["b"][0].status == 200
    assert rig.store.get("b")["value"] == "2"
    rig.tick(TIMEOUT + 1)
    assert len(rig.answers["a"]) == 1 and len(rig.answers["b"]) == 1


def test_a_leader_that_loses_leadership_before_proposing_routes_the_writes_to_the_new_leader():
    rig = Rig(leader=1)
    rig.send(put("a"), put("b"))
    rig.leader = None  # the step that carries them makes this node a follower
    rig.step(NotLeader(None))
    assert rig.router.parked == 2 and rig.forwarder.sent == []
    rig.leader = 2  # a later step brings the new leader
    rig.router.after_step()
    assert [(address, item.request["key"]) for address, item in rig.forwarder.sent] == [
        ("10.0.0.2", "a"), ("10.0.0.2", "b")
    ]
    assert rig.answers == {"a": [], "b": []}


def test_a_lost_leadership_with_the_new_leader_known_forwards_at_once_and_reads_too():
    rig = Rig(leader=1)
    rig.send({"op": "get", "key": "r"})
    rig.leader = 2
    [read_index] = rig.step(NotLeader(2))
    assert type(read_index) is ReadIndex
    [(address, item)] = rig.forwarder.sent
    assert address == "10.0.0.2" and item.request["key"] == "r" and rig.router.parked == 0


def test_a_forwarded_request_is_never_forwarded_again():
    rig = Rig(leader=1)
    rig.send(put("a"), forwarded=True)
    rig.leader = 2
    rig.step(NotLeader(2))
    [answer] = rig.answers["a"]
    assert answer.status == 503 and "node 1 is not the leader (node 2 is)" in answer.body["error"]
    assert rig.forwarder.sent == []


def test_what_the_link_gives_back_is_forwarded_again_a_heartbeat_later_and_answered_once():
    rig = Rig(leader=2)
    rig.send(put("a"))
    [(_, item)] = rig.forwarder.sent
    rig.router.unsent([item])  # the leader answered 503: not applied
    rig.router.after_step()
    assert len(rig.forwarder.sent) == 1  # not before a heartbeat
    rig.tick(HEARTBEAT)
    assert len(rig.forwarder.sent) == 2 and rig.forwarder.sent[1][1] is item
    # The leader answers; the link breaking afterwards cannot answer it again.
    item.waiter.resolve(rig.router.serve_read({"op": "get", "key": "a", "revision": 0, "serializable": True}))
    rig.router.unsent([item])
    rig.clock.now += HEARTBEAT
    rig.router.after_step()
    rig.tick(HEARTBEAT)
    rig.router.stop()
    assert len(rig.answers["a"]) == 1 and len(rig.forwarder.sent) == 2


def test_a_request_not_answered_within_the_request_timeout_gets_504():
    rig = Rig(leader=1)
    rig.send(put("w"), {"op": "get", "key": "r"})
    rig.step(Accepted(term=2, first_index=5, last_index=5), ReadReady(9))
    rig.tick(TIMEOUT - 0.01)
    assert rig.answers == {"w": [], "r": []}
    rig.tick(0.02)
    [write] = rig.answers["w"]
    [read] = rig.answers["r"]
    assert write.status == 504 and "outcome is unknown" in write.body["error"]
    assert read.status == 504 and "unknown" not in read.body["error"]
    # Applied after its 504: the client has its answer already.
    rig.applier.apply([Entry(2, 5, orjson.dumps({**put("w"), "lease": 0}))])
    assert len(rig.answers["w"]) == 1


def test_a_parked_request_gets_its_503_before_the_deadline_would_answer_504():
    rig = Rig(leader=None)
    rig.send(put("a"))
    rig.tick(PARK)
    [answer] = rig.answers["a"]
    assert answer.status == 503 and answer.body["code"] == "no_leader"
    rig.tick(TIMEOUT)
    assert len(rig.answers["a"]) == 1


def test_reads_wait_for_the_store_s_applied_index():
    rig = Rig(leader=1)
    rig.send({"op": "get", "key": "a"})
    rig.step(ReadReady(1))
    assert rig.answers["a"] == []
    rig.applier.on_record(record_of([Apply((Entry(1, 1, orjson.dumps({**put("a", "1"), "lease": 0})),))]))
    [answer] = rig.answers["a"]
    assert answer.status == 200 and answer.body["kv"]["value"] == "1"


def test_stopping_answers_every_parked_and_waiting_request_once_and_refuses_new_ones():
    rig = Rig(leader=None)
    rig.send(put("parked"))
    rig.leader = 1
    rig.send(put("proposed"))
    rig.step(Accepted(term=2, first_index=3, last_index=3))
    rig.leader = None
    rig.send(put("parked-too"))
    rig.router.stop()
    assert rig.answers["parked"][0].body["code"] == "shutting_down"
    assert rig.answers["parked-too"][0].body["code"] == "shutting_down"
    assert rig.answers["proposed"][0].status == 504  # in the log already: unknown outcome
    rig.send(put("late"))
    assert rig.answers["late"][0].body["code"] == "shutting_down"
    rig.tick(TIMEOUT + 1)
    assert all(len(answers) == 1 for answers in rig.answers.values())


def test_the_node_s_own_proposals_go_into_the_pipeline_unanswered():
    rig = Rig(leader=1)
    rig.router.propose([{"op": "lease_expire", "lease": 7}, {"op": "compact", "revision": 3}])
    assert [item.request for item in rig.pushed] == [{"op": "lease_expire", "lease": 7}, {"op": "compact", "revision": 3}]
    assert all(item.forwarded and item.command == orjson.dumps(item.request) for item in rig.pushed)


def test_an_invalid_request_is_answered_at_once_and_never_routed():
    rig = Rig(leader=None)
    rig.send({"op": "put", "key": "a"})  # no value
    [answer] = rig.answers["a"]
    assert answer.status == 400 and rig.router.parked == 0


@pytest.mark.parametrize("leader", [None, 1, 2])
def test_a_serializable_read_is_served_from_this_node_s_store_whoever_leads(leader):
    rig = Rig(leader=leader)
    rig.send({"op": "get", "key": "a", "serializable": True})
    [answer] = rig.answers["a"]
    assert answer.status == 404 and rig.pushed == [] and rig.forwarder.sent == [] and rig.router.parked == 0
