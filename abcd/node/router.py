"""The request router: one place decides what becomes of a client request.

Theory of operation
-------------------
A request enters through `handle_many` (the requests of one session frame, or one
HTTP call through `submit`).  It is validated (and authorized, with auth on), then:

* answered at once: an invalid or refused request (shutting down, overloaded), or a
  serializable read, served from this node's store;
* on the leader, pushed into the pipeline; `PendingRequests` (requests.py) holds it
  while the core and the applier work on it: one Propose / ReadIndex per turn, then
  the index it was accepted at, until the applier claims it and answers it;
* on a follower, forwarded to the leader it knows (forward.py);
* with no leader known, or none this node can reach, parked.

`route` makes that last decision, and it is made again, the same way, each time a
request comes back without an answer: the core refused it as it had just lost
leadership (`NotLeader`: `reroute`), or the forwarding link handed it back (not sent,
or the leader answered 503 "not applied": `unsent`, retried a heartbeat later, by when
this node may know the new leader).  A parked request is retried after each step
once a leader is known (`after_step`), and answered `503 no_leader` once it has
waited `park_seconds` for one (`on_tick`).

A request answers exactly once (its `Waiter`): with its result; 503 when it is known
not to have been applied (safe to retry); or 504 past `request_timeout`
(`PendingRequests.expire`), or when a write was sent but its answer cannot come (the
forwarding link broke, the node installed a snapshot over its index, or stops): a
write's outcome is then unknown.

Leadership is read through two callables given by the node (`is_leader`,
`leader_id`), and the applied index is the store's: the router keeps no copy of
either.
"""
from __future__ import annotations

import asyncio
from typing import Callable

import loguru

from ..kv import KVError, KVStore, is_write, validate_request
from ..kv.validate import validate_admin
from . import responses
from .auth import NO_CREDENTIAL, Credential, Gate
from .forward import Forwarder
from .leases import LeaseTimers
from .requests import ClientRead, ClientWrite, PendingRequests, Waiter, encode_command
from .responses import Response

# Requests in flight at once, node-wide; more are refused with 503 rather than let
# memory grow without bound (Rx has no backpressure; clients do: they wait).
MAX_PENDING_REQUESTS = 100_000

Item = ClientWrite | ClientRead
Callback = Callable[[Response], None]


def _ignore(response: Response) -> None:
    """The answer to a proposal the node makes itself (it needs none)."""


class RequestRouter:
    def __init__(
        self,
        *,
        store: KVStore,
        gate: Gate,
        leases: LeaseTimers,
        loop: asyncio.AbstractEventLoop,
        is_leader: Callable[[], bool],
        leader_id: Callable[[], int | None],
        address_of: Callable[[int], str | None],
        node_id: int,
        request_timeout: float,
        park_seconds: float,
        retry_seconds: float,
        local_reads: bool = False,
        logger=loguru.logger,
        tls=None,
    ) -> None:
        self._store = store
        self._gate = gate
        self._leases = leases
        self._loop = loop
        self._time = loop.time
        self._is_leader = is_leader
        self._leader_id = leader_id
        self._address_of = address_of
        self._node_id = node_id
        self.request_timeout = request_timeout
        # How long a request waits for a (reachable) leader before its 503.
        self.park_seconds = park_seconds
        # How long a request handed back by the forwarding link waits before it is
        # routed again: a heartbeat, by when this node may know the new leader.
        self._retry_seconds = retry_seconds
        # Serve linearizable reads from the local store (a planted bug; False outside tests).
        self._local_reads = local_reads
        self.stopping = False
        self.requests = PendingRequests(
            serve_read=self.serve_read,
            on_not_leader=self.reroute,
            applied_index=lambda: store.applied_index,
            timeout=request_timeout,
        )
        self.forwarder = Forwarder(self.unsent, logger=logger, tls=tls)
        # Requests waiting for a (reachable) leader: (not routed again before, item).
        self._parked: list[tuple[float, Item]] = []
        # Where the leader's requests go: Pipeline.push_requests (set once the node's
        # pipeline exists: the pipeline is built around this router's PendingRequests).
        self.push: Callable[[list], None] = self._not_started

    @staticmethod
    def _not_started(items: list) -> None:
        raise RuntimeError("the request router has no pipeline yet")

    # ------------------------------------------------------------------ entering

    def submit(
        self, request: object, *, forwarded: bool = False, credential: Credential = NO_CREDENTIAL, admin: bool = False
    ) -> asyncio.Future:
        """Handle one client request; the future gets its Response."""
        future = self._loop.create_future()

        def answer(response: Response) -> None:
            if not future.done():
                future.set_result(response)

        self.handle_many([(request, answer)], forwarded=forwarded, credential=credential, admin=admin)
        return future

    def handle_many(
        self,
        requests: list[tuple[object, Callback]],
        *,
        forwarded: bool = False,
        credential: Credential = NO_CREDENTIAL,
        admin: bool = False,
    ) -> None:
        """Handle the requests of one client frame together: one pipeline item for all.

        Each callback is called exactly once, with its request's Response.  What is the
        same for every request of the frame (shutting down, room left, the deadline, the
        caller) is looked up once: on the leader this loop runs for every write.
        `credential` says who calls when auth is on (node/auth.py); `admin` (the auth
        API, and a follower's forwarding link) also takes the auth commands.
        """
        gate = self._gate
        principal = None
        if gate.enabled:
            try:
                principal = gate.principal(credential)
            except KVError as e:
                refused = responses.from_kv_error(e)
                for _, callback in requests:
                    callback(refused)
                return
        token = principal.token if principal is not None else None
        validate = validate_admin if admin or forwarded else validate_request
        stopping = self.stopping
        pending = self.requests
        room = MAX_PENDING_REQUESTS - pending.tracked
        deadline = self._time() + self.request_timeout
        track = pending.track
        local_reads = self._local_reads
        items: list[Item] = []
        for request, callback in requests:
            try:
                op = validate(request)
                write = is_write(op)
                if principal is not None:
                    op = gate.authorize(principal, op, write)
            except KVError as e:
                callback(responses.from_kv_error(e))
                continue
            if stopping:
                callback(responses.shutting_down())
                continue
            if room <= 0:
                callback(responses.unavailable("overloaded", f"{MAX_PENDING_REQUESTS} requests are in flight; retry shortly"))
                continue
            if not write and (op.get("serializable") or local_reads):
                callback(self.serve_read(op))
                continue
            room -= 1
            waiter = Waiter(callback, deadline, is_write=write)
            track(waiter)
            items.append(
                ClientWrite(encode_command(op), op, waiter, forwarded, token=token)
                if write
                else ClientRead(op, waiter, forwarded, token=token)
            )
        if not items:
            return
        if self._is_leader():
            self.push(items)
        else:
            for item in items:
                self.route(item)

    def propose(self, ops: list[dict]) -> None:
        """Writes the node makes itself (leases' ends, an automatic compaction), on the
        leader; nobody waits for their answers, and they are never forwarded."""
        deadline = self._time() + self.request_timeout
        self.push([ClientWrite(encode_command(op), op, Waiter(_ignore, deadline), forwarded=True) for op in ops])

    def serve_read(self, op: dict) -> Response:
        """A read from this node's store (a serializable one, or one whose read index is applied)."""
        try:
            body = self._store.read(op)
        except KVError as e:
            return responses.from_kv_error(e)
        if op["op"] == "lease_keepalive":
            # Served by the leader (never serializable): its clock is the one that counts.
            self._leases.keepalive(body["id"], body["ttl"], self._time())
        return responses.ok(body)

    # ------------------------------------------------------------------ routing

    def route(self, item: Item) -> None:
        """To the leader's pipeline, to the leader over the forwarding link, or parked."""
        if item.waiter.done:
            return
        if self._is_leader():
            self.push([item])
            return
        leader = self._leader_id()
        if leader is None:
            self._park(item)
        elif item.forwarded:
            # Never forwarded twice: two nodes that each believe the other leads would
            # bounce it between them.
            item.waiter.resolve(responses.no_leader(f"node {self._node_id} is not the leader (node {leader} is)"))
        else:
            address = self._address_of(leader)
            if address is None:
                self._park(item)
            else:
                self.forwarder.forward(address, item)

    def reroute(self, items: list, leader_id: int | None = None) -> None:
        """The core refused these as it was not (or no longer) the leader: route them again."""
        for item in items:
            self.route(item)

    def unsent(self, items: list) -> None:
        """The forwarding link gives these back: not sent before it failed, or answered
        503 (not applied) by a node that no longer leads.  Routed again a heartbeat
        later, until `park_seconds` after each first waited."""
        retry_at = self._time() + self._retry_seconds
        for item in items:
            self._park(item, retry_at)

    def _park(self, item: Item, retry_at: float = 0.0) -> None:
        if not item.give_up_at:
            item.give_up_at = self._time() + self.park_seconds
        self._parked.append((retry_at, item))

    @property
    def parked(self) -> int:
        return len(self._parked)

    def _retry_parked(self) -> None:
        now = self._time()
        parked, self._parked = self._parked, []
        for retry_at, item in parked:
            if retry_at > now:
                self._parked.append((retry_at, item))
            else:
                self.route(item)

    # ------------------------------------------------------------------ the node's clock and steps

    def after_step(self) -> None:
        """After each pipeline step: parked requests go to a leader this step made known."""
        if self._parked and self._leader_id() is not None:
            self._retry_parked()

    def on_tick(self, now: float) -> None:
        """504 past the deadline; 503 to a request that waited `park_seconds` for a leader."""
        self.requests.expire(now)
        if not self._parked:
            return
        keep = []
        for parked in self._parked:
            item = parked[1]
            if item.give_up_at <= now:
                leader = self._leader_id()
                detail = f"node {leader} leads but cannot be reached" if leader is not None else ""
                item.waiter.resolve(responses.no_leader(detail))
            elif not item.waiter.done:
                keep.append(parked)
        self._parked = keep
        if self._leader_id() is not None:
            self._retry_parked()

    # ------------------------------------------------------------------ shutdown

    def stop(self) -> None:
        """The node stops: new requests get 503, everyone waiting gets an answer."""
        self.stopping = True
        self.requests.fail_all(responses.shutting_down())
        parked, self._parked = self._parked, []
        for _, item in parked:
            item.waiter.resolve(responses.shutting_down())

    async def close(self) -> None:
        await self.forwarder.close()
