"""Request futures: one proposal per turn, acknowledged on apply with the right term."""
from abcd.node import responses
from abcd.node.requests import ClientRead, ClientWrite, CoreCall, PendingRequests, Waiter
from abcd.raft.effects import Accepted, NotLeader, ReadReady, Rejected, Reply
from abcd.raft.messages import Entry, Propose, ReadIndex, Tick


class Harness:
    def __init__(self, timeout=5.0):
        self.not_leader = []
        self.reads_served = []
        self.applied_index = 0  # the store's, in a node
        self.pending = PendingRequests(
            serve_read=self.serve, on_not_leader=self.on_not_leader, applied_index=lambda: self.applied_index,
            timeout=timeout,
        )

    def apply(self, entry, response):
        """What the applier does with one entry."""
        write = self.pending.claim(entry)
        self.applied_index = entry.index
        if write is not None:
            write.waiter.resolve(response)

    def serve(self, request):
        self.reads_served.append(request)
        return responses.ok({"read": request["key"]})

    def on_not_leader(self, items, leader_id):
        self.not_leader.append((items, leader_id))

    def write(self, key, deadline=10.0):
        answers = []
        waiter = Waiter(answers.append, deadline)
        self.pending.track(waiter)
        return ClientWrite(key.encode(), {"op": "put", "key": key}, waiter), answers

    def read(self, key, deadline=10.0):
        answers = []
        waiter = Waiter(answers.append, deadline, is_write=False)
        self.pending.track(waiter)
        return ClientRead({"op": "get", "key": key}, waiter), answers


def test_writes_of_one_turn_become_one_propose_and_other_events_pass_through():
    h = Harness()
    w1, _ = h.write("a")
    w2, _ = h.write("b")
    r1, _ = h.read("a")
    r2, _ = h.read("b")
    events = h.pending.to_events([Tick(), w1, r1, w2, r2])
    assert events[0] == Tick()
    [propose] = [e for e in events if type(e) is Propose]
    assert propose.commands == (b"a", b"b")
    reads = [e for e in events if type(e) is ReadIndex]
    assert len(reads) == 1  # the reads of a turn share one ReadIndex
    assert h.pending.proposals == 1 and h.pending.commands_proposed == 2


def test_a_write_is_acknowledged_when_its_index_is_applied_with_its_term():
    h = Harness()
    w1, a1 = h.write("a")
    w2, a2 = h.write("b")
    [propose] = h.pending.to_events([w1, w2])
    h.pending.on_reply(Reply(propose.tag, Accepted(term=3, first_index=7, last_index=8)))
    h.apply(Entry(3, 7, b"a"), responses.ok({"revision": 5}))
    assert a1 == [responses.ok({"revision": 5})]
    assert a2 == []
    h.apply(Entry(3, 8, b"b"), responses.ok({"revision": 6}))
    assert a2 == [responses.ok({"revision": 6})]


def test_another_term_at_the_index_means_the_proposal_was_lost():
    h = Harness()
    w, answers = h.write("a")
    [propose] = h.pending.to_events([w])
    h.pending.on_reply(Reply(propose.tag, Accepted(term=3, first_index=7, last_index=7)))
    h.apply(Entry(4, 7, b"someone else's"), responses.ok({"revision": 9}))
    [answer] = answers
    assert answer.status == 503 and answer.body["code"] == "proposal_dropped"
    assert "not applied" in answer.body["error"]


def test_not_leader_hands_the_writes_back_to_the_node():
    h = Harness()
    w, answers = h.write("a")
    [propose] = h.pending.to_events([w])
    h.pending.on_reply(Reply(propose.tag, NotLeader(2)))
    assert h.not_leader == [([w], 2)]
    assert answers == []


def test_rejected_answers_503():
    h = Harness()
    w, answers = h.write("a")
    [propose] = h.pending.to_events([w])
    h.pending.on_reply(Reply(propose.tag, Rejected("leadership is being transferred to 2")))
    assert answers[0].status == 503 and "transferred" in answers[0].body["error"]


def test_past_the_deadline_a_write_gets_504_with_unknown_outcome_once():
    h = Harness(timeout=5.0)
    w, answers = h.write("a", deadline=5.0)
    [propose] = h.pending.to_events([w])
    h.pending.on_reply(Reply(propose.tag, Accepted(3, 7, 7)))
    assert h.pending.expire(4.9) == 0
    assert h.pending.expire(5.0) == 1
    [answer] = answers
    assert answer.status == 504 and answer.body["code"] == "timeout"
    assert "outcome is unknown" in answer.body["error"]
    # Applied later: the client already has its answer; nothing is sent twice.
    h.apply(Entry(3, 7, b"a"), responses.ok({}))
    assert len(answers) == 1


def test_a_read_timeout_does_not_claim_an_unknown_outcome():
    h = Harness(timeout=2.0)
    r, answers = h.read("a", deadline=2.0)
    h.pending.to_events([r])
    h.pending.expire(3.0)
    assert answers[0].status == 504 and "unknown" not in answers[0].body["error"]


def test_reads_are_served_once_the_read_index_is_applied():
    h = Harness()
    r, answers = h.read("a")
    [read_index] = h.pending.to_events([r])
    h.apply(Entry(1, 4), None)
    h.pending.on_reply(Reply(read_index.tag, ReadReady(5)))
    assert answers == []  # applied 4 < read index 5
    h.apply(Entry(1, 5), None)
    h.pending.release_reads()
    assert answers == [responses.ok({"read": "a"})]


def test_a_read_whose_index_is_already_applied_is_served_at_once():
    h = Harness()
    h.apply(Entry(1, 9), None)
    r, answers = h.read("a")
    [read_index] = h.pending.to_events([r])
    h.pending.on_reply(Reply(read_index.tag, ReadReady(9)))
    assert answers == [responses.ok({"read": "a"})]


def test_requests_already_answered_are_not_proposed():
    h = Harness()
    w, answers = h.write("a", deadline=1.0)
    h.pending.expire(2.0)
    assert h.pending.to_events([w]) == []


def test_core_calls_get_their_reply_and_may_decline_to_propose():
    h = Harness()
    replies = []
    call = CoreCall(lambda tag: Propose(tag, (b"x",)), replies.append)
    declined = CoreCall(lambda tag: None, replies.append)
    events = h.pending.to_events([call, declined])
    assert len(events) == 1
    h.pending.on_reply(Reply(events[0].tag, Accepted(1, 2, 2)))
    assert replies == [Accepted(1, 2, 2)]


def test_fail_all_answers_everyone():
    h = Harness()
    w, wa = h.write("a")
    r, ra = h.read("b")
    h.pending.to_events([w, r])
    h.pending.fail_all(responses.shutting_down())
    assert ra[0].status == 503 and ra[0].body["code"] == "shutting_down"
    # The write was proposed: it may be in the log of other members, so "not applied" (503)
    # would be a lie; its outcome is unknown.
    assert wa[0].status == 504 and "outcome is unknown" in wa[0].body["error"]
    assert h.pending.waiting == 0


def test_fail_all_gives_accepted_writes_an_unknown_outcome_naming_their_index():
    h = Harness()
    w, wa = h.write("a")
    (propose,) = h.pending.to_events([w])
    h.pending.on_reply(Reply(propose.tag, Accepted(term=2, first_index=5, last_index=5)))
    h.pending.fail_all(responses.shutting_down())
    assert wa[0].status == 504 and wa[0].body["code"] == "timeout"
    assert "write at index 5 was committed; the outcome is unknown" in wa[0].body["error"]


def test_a_logged_command_takes_the_memory_of_its_own_length():
    # The leader's log keeps each write's bytes until a snapshot covers them; orjson's
    # own result sits in a 1 KiB buffer, which made a loaded leader hold ~1 KiB per
    # entry more than a follower (docs/performance.md, "Memory per key").
    import tracemalloc

    import orjson

    from abcd.node.requests import encode_command

    op = {"op": "put", "key": "0000000000000001", "value": "v" * 100, "lease": 0}
    assert encode_command(op) == orjson.dumps(op)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode_command(op) for _ in range(1000)]
        per_command = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_command < 2 * len(kept[0]), f"{per_command:.0f} bytes held for a {len(kept[0])}-byte command"
