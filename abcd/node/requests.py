"""Client requests waiting for the Raft core: proposals, linearizable reads, calls.

Theory of operation
-------------------
A client write becomes a `ClientWrite` item pushed into the pipeline.  All writes of
one loop turn become ONE `Propose(tag, commands)` (`to_events`), so one batch of
clients costs one log append, one fsync and one AppendEntries per follower.  The
core answers the tag with a Reply:

* `Accepted(term, first, last)`: the i-th write now sits at index first+i of `term`.
  It is acknowledged when the applier applies that index with that term.  If an
  entry of another term is applied at that index, ours was overwritten by a new
  leader and can never commit (Log Matching, §5.3): the client is told it was not
  applied.
* `NotLeader` / `Rejected`: handed to `on_not_leader` (the request router routes them
  again: to the leader it knows, or parked until one is known) or answered 503.

Linearizable reads of one turn share one `ReadIndex(tag)` (§6.4); `ReadReady(i)`
means the reads may be served once the store's applied index reaches `i`.

The applier tells what it applies through `claim(entry)`, which hands it the write
waiting for that entry, if any, to answer with the entry's result; after a batch,
`release_reads` serves the reads the store's applied index now covers.

Every request has a deadline; `expire(now)` (called on ticks) answers 504 to those
past it.  A `Waiter` is answered exactly once, whichever comes first.
"""
from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from ..raft.effects import Accepted, NotLeader, ReadReady, Rejected, Reply
from ..raft.record import StepRecord
from ..raft.messages import Entry, Propose, ReadIndex
from . import responses
from .responses import Response


class Waiter:
    """Someone waiting for one Response; `resolve` calls back once, later calls are ignored."""

    __slots__ = ("callback", "done", "deadline", "is_write")

    def __init__(self, callback: Callable[[Response], None], deadline: float, *, is_write: bool = True) -> None:
        self.callback = callback
        self.done = False
        self.deadline = deadline
        self.is_write = is_write  # a write that times out has an unknown outcome

    def resolve(self, response: Response) -> None:
        if not self.done:
            self.done = True
            self.callback(response)


def encode_command(request: dict) -> bytes:
    """The bytes a validated write has in the log: orjson's encoding, copied to an object
    of its own length.

    orjson.dumps returns its bytes in the 1 KiB buffer it wrote them into (orjson 3.x
    does not shrink it), and the leader's log keeps the command's bytes until a snapshot
    covers them: up to --snapshot-count + --snapshot-catchup-entries entries, 1 KiB each
    for a 160-byte put, where a follower holds bytes of their own size decoded from
    AppendEntries.  That was the leader's extra memory (docs/performance.md, "Memory
    per key"); the copy costs about 0.1 µs a write.
    """
    return memoryview(orjson.dumps(request)).tobytes()


@dataclass(slots=True, eq=False)
class ClientWrite:
    """A validated write: `command` is the orjson-encoded normal form of `request`."""

    command: bytes
    request: dict
    waiter: Waiter
    forwarded: bool = False
    # When the node stops waiting for a leader for it (set when first parked).
    give_up_at: float = 0.0
    # The caller's token when auth is on: passed on with a forwarded request.
    token: str | None = None


@dataclass(slots=True, eq=False)
class ClientRead:
    request: dict
    waiter: Waiter
    forwarded: bool = False
    give_up_at: float = 0.0
    token: str | None = None


@dataclass(slots=True, eq=False)
class CoreCall:
    """Any other request to the core (config change, leadership transfer).

    `make_event(tag)` builds the event when the batch is stepped, so it sees the core
    as it is then (a membership change is planned against the latest configuration);
    it returns None when there is nothing to propose (it answered its caller itself).
    `on_reply(result)` gets the core's answer, or None if the node stops first.
    """

    make_event: Callable[[int], Any]
    on_reply: Callable[[Any], None]


OnNotLeader = Callable[[list, int | None], None]


class PendingRequests:
    def __init__(
        self,
        *,
        serve_read: Callable[[dict], Response],
        on_not_leader: OnNotLeader,
        applied_index: Callable[[], int],
        timeout: float,
    ) -> None:
        self._serve_read = serve_read
        self._on_not_leader = on_not_leader
        # The store's applied index (the one place it is kept): reads wait for it.
        self._applied_index = applied_index
        self.timeout = timeout
        self._tags = itertools.count(1)
        self._proposals: dict[int, list[ClientWrite]] = {}  # tag -> writes, until Accepted
        self._read_batches: dict[int, list[ClientRead]] = {}  # tag -> reads, until ReadReady
        self._calls: dict[int, CoreCall] = {}
        # Index -> (term, write): accepted writes waiting to be applied.
        self._by_index: dict[int, tuple[int, ClientWrite]] = {}
        # (read_index, seq, reads): reads waiting for the applier to reach read_index.
        self._reads_waiting_apply: list[tuple[int, int, list[ClientRead]]] = []
        self._seq = itertools.count()
        # Every waiter, oldest first; deadlines grow with creation time.
        self._deadlines: deque[Waiter] = deque()
        # Statistics.
        self.proposals = 0
        self.commands_proposed = 0

    def track(self, waiter: Waiter) -> None:
        self._deadlines.append(waiter)

    # ------------------------------------------------------------------ into the core

    def to_events(self, batch: list) -> list:
        """A turn's items -> core events: one Propose for all writes, one ReadIndex for all reads."""
        events: list = []
        writes: list[ClientWrite] = []
        reads: list[ClientRead] = []
        for item in batch:
            kind = type(item)
            if kind is ClientWrite:
                if not item.waiter.done:
                    writes.append(item)
            elif kind is ClientRead:
                if not item.waiter.done:
                    reads.append(item)
            elif kind is CoreCall:
                tag = next(self._tags)
                event = item.make_event(tag)
                if event is not None:
                    self._calls[tag] = item
                    events.append(event)
            else:
                events.append(item)
        if writes:
            tag = next(self._tags)
            self._proposals[tag] = writes
            events.append(Propose(tag, tuple(w.command for w in writes)))
            self.proposals += 1
            self.commands_proposed += len(writes)
        if reads:
            tag = next(self._tags)
            self._read_batches[tag] = reads
            events.append(ReadIndex(tag))
        return events

    # ------------------------------------------------------------------ out of the core

    def on_record(self, record: StepRecord) -> None:
        """A step's `replies` part."""
        for reply in record.replies:
            self.on_reply(reply)

    def on_reply(self, reply: Reply) -> None:
        tag, result = reply.tag, reply.result
        writes = self._proposals.pop(tag, None)
        if writes is not None:
            self._answer_proposal(writes, result)
            return
        reads = self._read_batches.pop(tag, None)
        if reads is not None:
            self._answer_reads(reads, result)
            return
        call = self._calls.pop(tag, None)
        if call is not None:
            call.on_reply(result)

    def _answer_proposal(self, writes: list[ClientWrite], result: Any) -> None:
        kind = type(result)
        if kind is Accepted:
            first, term = result.first_index, result.term
            by_index = self._by_index
            for offset, write in enumerate(writes):
                by_index[first + offset] = (term, write)
        elif kind is NotLeader:
            self._on_not_leader(writes, result.leader_id)
        elif kind is Rejected:
            for write in writes:
                write.waiter.resolve(responses.unavailable("rejected", f"not proposed: {result.reason}"))
        else:
            raise TypeError(f"unexpected reply to a proposal: {result!r}")

    def _answer_reads(self, reads: list[ClientRead], result: Any) -> None:
        kind = type(result)
        if kind is ReadReady:
            if result.read_index <= self._applied_index():
                self._serve(reads)
            else:
                heapq.heappush(self._reads_waiting_apply, (result.read_index, next(self._seq), reads))
        elif kind is NotLeader:
            self._on_not_leader(reads, result.leader_id)
        else:
            for read in reads:
                read.waiter.resolve(responses.unavailable("rejected", f"read refused: {result}"))

    def expect_apply(self, index: int, term: int, write: ClientWrite) -> None:
        """Answer `write` when `index` is applied (with `term`; see claim)."""
        self._by_index[index] = (term, write)

    # ------------------------------------------------------------------ the applier's side

    @property
    def writes_waiting(self) -> bool:
        """Whether any write waits for its index to be applied: the applier needs to
        `claim` entries only while one does (on a follower, none ever does)."""
        return bool(self._by_index)

    def claim(self, entry: Entry) -> ClientWrite | None:
        """The write that waits for `entry`, which the applier is about to apply, if that
        entry is the one the write was accepted as (same index and term, §5.3).

        The write is handed over: the applier answers it (its `waiter`) with what
        applying the entry returned; nothing here waits for it any more.  A write accepted at this index in another term was overwritten by a new leader's
        entry and can never commit: it is told so here, and None is returned."""
        waiting = self._by_index.pop(entry.index, None)
        if waiting is None:
            return None
        if waiting[0] != entry.term:
            waiting[1].waiter.resolve(responses.proposal_lost())
            return None
        return waiting[1]

    def on_restored(self, index: int) -> None:
        """The state machine jumped to a leader's snapshot at `index` (Restore).

        The entries up to `index` will never be applied one by one here, so the writes
        waiting for one of them cannot learn their entry's term: whether they were
        committed is unknown to this node (504, as for a timeout).  Reads waiting for an
        index the snapshot covers are released by the next release_reads().
        """
        if not self._by_index:
            return
        for waiting_index in sorted(i for i in self._by_index if i <= index):
            _term, write = self._by_index.pop(waiting_index)
            write.waiter.resolve(responses.overtaken_by_snapshot(waiting_index, index))

    def release_reads(self) -> None:
        """Serve the reads whose read index is now applied (call after each Apply)."""
        heap = self._reads_waiting_apply
        if not heap:
            return
        applied = self._applied_index()
        while heap and heap[0][0] <= applied:
            self._serve(heapq.heappop(heap)[2])

    def _serve(self, reads: list[ClientRead]) -> None:
        for read in reads:
            if not read.waiter.done:
                read.waiter.resolve(self._serve_read(read.request))

    # ------------------------------------------------------------------ time and shutdown

    def expire(self, now: float) -> int:
        """Answer 504 to every request past its deadline; returns how many."""
        expired = 0
        deadlines = self._deadlines
        while deadlines and (deadlines[0].done or deadlines[0].deadline <= now):
            waiter = deadlines.popleft()
            if not waiter.done:
                expired += 1
                waiter.resolve(responses.timed_out(self.timeout, write=waiter.is_write))
        return expired

    def fail_all(self, response: Response) -> None:
        """Answer everyone waiting: the node stops.  A write already proposed may still
        commit (its entry can be on other members, or in this node's WAL, and a later
        leader commits it), so it gets an unknown outcome, never `response`'s 503 "not
        applied"."""
        for index, (_term, write) in self._by_index.items():
            write.waiter.resolve(responses.stopped_before_commit(index))
        for writes in self._proposals.values():
            for write in writes:
                write.waiter.resolve(responses.stopped_before_commit(None))
        for waiter in self._deadlines:
            waiter.resolve(response)
        self._deadlines.clear()
        self._proposals.clear()
        self._read_batches.clear()
        self._by_index.clear()
        self._reads_waiting_apply.clear()
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call.on_reply(None)

    @property
    def tracked(self) -> int:
        """Requests tracked for their deadline (answered ones leave at the next expire)."""
        return len(self._deadlines)

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._deadlines if not w.done)
