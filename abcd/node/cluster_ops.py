"""Membership changes and leadership transfer, as the leader carries them out.

Each change is a `CoreCall` pushed into the pipeline.  Its event is planned when the
batch is stepped (`make_event`), against the configuration the core has then, so
two changes planned at once cannot overwrite each other: the core accepts one
change at a time (thesis §4.1) and refuses the second, which answers 503 (retry).
A change is answered once its configuration entry is applied, i.e. committed.

A follower forwards these calls to the leader over HTTP (forward.py), marked as
forwarded so that they are never forwarded twice.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..net import parse_address
from ..raft.effects import Accepted, NotLeader, Rejected
from ..raft.messages import TransferLeadership
from . import responses
from .forward import CLUSTER_TOKEN_HEADER
from .membership import ChangeError
from .requests import ClientWrite, CoreCall, Waiter
from .responses import Response

if TYPE_CHECKING:
    from .config import NodeConfig
    from .core_view import CoreView
    from .membership import Membership
    from .router import RequestRouter


class ClusterNode(Protocol):
    """What these operations use of a node (node.Node is one).

    The node's view of the core (the step records' soft state and configuration, and
    the followers' match indexes) says who leads, what is committed and configured;
    requests reach the leader's pipeline, wait for their entry
    to apply and are forwarded to the leader through the router."""

    node_id: int
    cluster_id: str
    config: "NodeConfig"
    view: "CoreView"
    membership: "Membership"
    router: "RequestRouter"
    loop: asyncio.AbstractEventLoop
    logger: Any
    stopping: bool
    promoting: bool  # a learner's promotion is under way (maybe_promote)
    commit_at_last_tick: int  # for deciding when a learner has caught up

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> asyncio.Future: ...

    def sync_membership(self) -> bool: ...


def _leader_or_forward(node: ClusterNode, forwarded: bool) -> tuple[bool, str | None]:
    """(is leader, leader address to forward to)."""
    if node.view.is_leader():
        return True, None
    if forwarded:
        return False, None
    return False, node.membership.address_of(node.view.leader_id)


async def _on_leader(
    node: ClusterNode, forwarded: bool, method: str, path: str, body: Any, headers: dict[str, str] | None = None
) -> Response | None:
    """None if this node is the leader; else the leader's answer (or 503)."""
    deadline = node.loop.time() + node.router.park_seconds
    while True:
        leader, address = _leader_or_forward(node, forwarded)
        if leader:
            return None
        if address is not None:
            return await node.router.forwarder.call(address, method, path, body, headers)
        if forwarded and node.view.leader_id is not None:
            return responses.no_leader(f"node {node.node_id} is not the leader (node {node.view.leader_id} is)")
        remaining = deadline - node.loop.time()
        if remaining <= 0 or node.stopping:
            return responses.no_leader()
        await node.wait_for(lambda: node.view.leader_id is not None, remaining)


async def _propose_change(node: ClusterNode, plan: Callable[[], Any]) -> Response:
    """Propose a config change planned at step time; its Response once applied.

    The core takes one change at a time (and none before a new leader's first entry
    commits); a change refused for that reason waits for the pending one to commit
    and tries again, until the request's deadline, so concurrent joins serialize
    instead of failing.
    """
    deadline = node.loop.time() + node.config.request_timeout
    while True:
        response = await _propose_once(node, plan, deadline)
        if response.body.get("code") != "config_change_in_progress" or node.stopping:
            return response
        remaining = deadline - node.loop.time()
        if remaining <= 0:
            return response
        view = node.view
        await node.wait_for(lambda: view.pending_config_index <= view.commit_index or not view.is_leader(), remaining)


def _propose_once(node: ClusterNode, plan: Callable[[], Any], deadline: float) -> asyncio.Future:
    future = node.loop.create_future()

    def answer(response: Response) -> None:
        if not future.done():
            future.set_result(response)

    waiter = Waiter(answer, deadline, is_write=True)
    node.router.requests.track(waiter)

    def make_event(tag: int):
        if not node.view.is_leader():
            waiter.resolve(responses.no_leader("leadership changed before the change was proposed"))
            return None
        node.sync_membership()
        try:
            change = plan()
        except ChangeError as e:
            waiter.resolve(responses.error(e.status, e.code, str(e)))
            return None
        if change is None:
            waiter.resolve(responses.ok({}))
            return None
        return dataclasses.replace(change, tag=tag)

    def on_reply(result) -> None:
        if type(result) is Accepted:
            node.router.requests.expect_apply(result.first_index, result.term, ClientWrite(b"", {}, waiter))
        elif type(result) is NotLeader:
            waiter.resolve(responses.no_leader("leadership changed before the change was proposed"))
        elif type(result) is Rejected:
            if "already in progress" in result.reason:
                waiter.resolve(responses.unavailable("config_change_in_progress", result.reason))
            else:
                waiter.resolve(responses.bad_request(f"configuration change refused: {result.reason}"))
        elif result is None:
            waiter.resolve(responses.shutting_down())

    node.router.push([CoreCall(make_event, on_reply)])
    return future


def _check_id(raw: str) -> int | Response:
    try:
        node_id = int(raw)
    except ValueError:
        return responses.bad_request(f"member id must be an integer, got {raw!r}")
    if node_id < 1:
        return responses.bad_request(f"member id must be positive, got {node_id}")
    return node_id


def check_join_token(node: ClusterNode, token: str | None) -> Response | None:
    """403 unless the request presents the cluster token, when the cluster has one.

    Checked on every member a join passes through (the leader too: a forwarded request
    carries the token on), so that a node without the token is never added; the peer
    links would refuse it later anyway, leaving a member that can never catch up.  A
    token presented to a cluster that has none is refused as well: that node would
    refuse its peers' links."""
    expected = node.config.cluster_token
    if expected is None:
        if token is None:
            return None
        return responses.error(
            403, "forbidden",
            "this cluster runs without a cluster token, but the request presented one; a node started with "
            "--cluster-token could not talk to its peers: start it without --cluster-token",
        )
    if token is None:
        return responses.error(
            403, "forbidden",
            f"adding a member needs the cluster token ({CLUSTER_TOKEN_HEADER} header): start the joining node with "
            "the cluster's --cluster-token (abcdctl members add: --cluster-token)",
        )
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        return responses.error(403, "forbidden", "wrong cluster token: it is not this cluster's --cluster-token")
    return None


async def add_member(
    node: ClusterNode, body: Any, *, forwarded: bool, token: str | None = None, auth_headers: dict | None = None
) -> Response:
    if not isinstance(body, dict):
        return responses.bad_request("the body must be a JSON object {\"address\": \"host:port\", \"learner\"?: bool}")
    unknown = sorted(set(body) - {"address", "learner", "name", "join_id"})
    if unknown:
        return responses.bad_request(f"unknown field {unknown[0]!r}; expected address, learner, name, join_id")
    address = body.get("address")
    if type(address) is not str:
        return responses.bad_request("address must be a string \"host:port\"")
    try:
        parse_address(address)
    except ValueError as e:
        return responses.bad_request(f"address: {e}")
    learner = body.get("learner", True)
    if type(learner) is not bool:
        return responses.bad_request("learner must be a boolean")
    name = body.get("name")
    if name is not None and (type(name) is not str or not name or len(name) > 128):
        return responses.bad_request("name must be a non-empty string of at most 128 characters")
    join_id = body.get("join_id")
    if join_id is not None and (type(join_id) is not str or not 0 < len(join_id) <= 64):
        return responses.bad_request("join_id must be a non-empty string of at most 64 characters")
    refused = check_join_token(node, token)
    if refused is not None:
        return refused
    headers = {CLUSTER_TOKEN_HEADER: token} if token is not None else {}
    elsewhere = await _on_leader(node, forwarded, "POST", "/v1/members", body, {**headers, **(auth_headers or {})})
    if elsewhere is not None:
        return elsewhere
    added: dict[str, int] = {}

    def plan():
        existing = node.membership.find_by_address(address)
        if existing is not None:
            _check_same_node(node, existing, join_id)
            added["id"] = existing  # a retried join, or `members add` before the node's join
            return None
        node_id, change = node.membership.plan_add(node.view, address, name, learner, join_id)
        added["id"] = node_id
        return change

    response = await _propose_change(node, plan)
    if not response.ok:
        return response
    return responses.ok(_member_answer(node, added["id"]))


def _check_same_node(node: ClusterNode, member_id: int, join_id: str | None) -> None:
    """Refuse a join at a member's address by a node that is not that member.

    A node that lost its data dir forgot the votes it cast and the log it acknowledged:
    taken back as the same member, it could vote twice in a term, and the leader would
    count entries it no longer holds towards a majority.  It must join as a new member,
    after the old one is removed.  A join with the member's own join_id is a retry of
    the join that added it; a member without one was added by `members add` and is
    taken by the first node that joins at its address, unless the leader has already
    heard from a node as that member (its log matched the leader's somewhere)."""
    if join_id is None:
        return  # `members add` for an address that is a member already: nothing to do
    info = node.membership.info(member_id)
    known = info.join_id if info is not None else None
    answered = (node.view.match_index(member_id) or 0) > 0
    if known == join_id or (known is None and not answered):
        return
    raise ChangeError(
        409, "member_exists",
        f"{info.address if info else 'this address'} is already member {member_id}, which a node with other "
        f"data joined as: a node that lost its data dir must not rejoin under its old identity (it forgot its "
        f"votes and its log); remove member {member_id} (DELETE /v1/members/{member_id}, abcdctl members remove "
        f"{member_id}), then start the node again to join as a new member",
    )


def _member_answer(node: ClusterNode, node_id: int) -> dict:
    members = node.membership.describe(node.view)
    member = next((m for m in members if m["id"] == node_id), {"id": node_id})
    return {"member": member, "cluster_id": node.cluster_id, "members": members}


async def remove_member(node: ClusterNode, raw_id: str, *, forwarded: bool, auth_headers: dict | None = None) -> Response:
    node_id = _check_id(raw_id)
    if isinstance(node_id, Response):
        return node_id
    elsewhere = await _on_leader(node, forwarded, "DELETE", f"/v1/members/{node_id}", None, auth_headers)
    if elsewhere is not None:
        return elsewhere
    response = await _propose_change(node, lambda: node.membership.plan_remove(node.view, node_id))
    if not response.ok:
        return response
    return responses.ok({"removed": node_id, "members": node.membership.describe(node.view)})


async def promote_member(node: ClusterNode, raw_id: str, *, forwarded: bool, auth_headers: dict | None = None) -> Response:
    node_id = _check_id(raw_id)
    if isinstance(node_id, Response):
        return node_id
    elsewhere = await _on_leader(node, forwarded, "POST", f"/v1/members/{node_id}/promote", None, auth_headers)
    if elsewhere is not None:
        return elsewhere
    def plan():
        return node.membership.plan_promote(node.view, node_id, caught_up_index=node.commit_at_last_tick)

    response = await _propose_change(node, plan)
    if not response.ok:
        return response
    return responses.ok(_member_answer(node, node_id))


def maybe_promote(node: ClusterNode) -> None:
    """On the leader's ticks: promote one caught-up learner that joined to become a voter."""
    previous_commit, node.commit_at_last_tick = node.commit_at_last_tick, node.view.commit_index
    if node.stopping or not node.view.is_leader() or node.promoting:
        return
    learner = node.membership.learner_to_promote(node.view, previous_commit)
    if learner is None:
        return
    node.promoting = True
    node.logger.bind(event="PromoteLearner").info("node {} has caught up; promoting it to voter", learner)

    def plan():
        # Still a learner to promote at step time?
        if learner not in node.view.config.learners:
            return None
        return node.membership.plan_promote(node.view, learner, caught_up_index=node.commit_at_last_tick)

    future = asyncio.ensure_future(_propose_change(node, plan))

    def done(f: asyncio.Future) -> None:
        node.promoting = False
        if not f.cancelled() and not f.result().ok:
            node.logger.info("promoting node {} failed for now: {}", learner, f.result().body)

    future.add_done_callback(done)


async def transfer_leadership(node: ClusterNode, body: Any, *, forwarded: bool, auth_headers: dict | None = None) -> Response:
    if not isinstance(body, dict) or set(body) != {"to"} or type(body["to"]) is not int:
        return responses.bad_request("the body must be {\"to\": <member id>}")
    to = body["to"]
    elsewhere = await _on_leader(node, forwarded, "POST", "/v1/leader/transfer", body, auth_headers)
    if elsewhere is not None:
        return elsewhere
    result_future = node.loop.create_future()

    def on_reply(result) -> None:
        if not result_future.done():
            result_future.set_result(result)

    node.router.push([CoreCall(lambda tag: TransferLeadership(tag, to), on_reply)])
    result = await result_future
    if type(result) is Rejected:
        return responses.bad_request(result.reason)
    if type(result) is NotLeader or result is None:
        return responses.no_leader("leadership changed during the transfer")
    # Accepted: the transfer is under way; it completes when `to` wins its election.
    timeout = node.router.park_seconds
    done = await node.wait_for(lambda: node.view.leader_id == to, timeout)
    if not done:
        return responses.error(
            504, "timeout", f"leadership did not move to node {to} within {timeout:g} s; the leader is {node.view.leader_id}"
        )
    return responses.ok({"leader": to})


async def hand_off_leadership(node: ClusterNode) -> int | None:
    """Before a clean shutdown: pass leadership to the most caught-up voter.

    Saves the cluster an election timeout of unavailability (a rolling restart goes
    unnoticed).  Returns the new leader's id, or None if there was nobody to hand
    over to or the transfer did not complete within an election timeout.
    """
    view = node.view
    if node.stopping or not view.is_leader():
        return None
    voters = view.config.voters
    candidates = [(match, peer) for peer, match in view.match_indexes().items() if peer in voters]
    if not candidates:
        return None
    _, to = max(candidates)
    node.logger.bind(event="HandOff").info("shutting down: handing leadership to node {}", to)
    node.router.push([CoreCall(lambda tag: TransferLeadership(tag, to), lambda result: None)])
    moved = await node.wait_for(lambda: view.leader_id not in (None, node.node_id), node.config.election_timeout_ms / 1000.0)
    return view.leader_id if moved else None
