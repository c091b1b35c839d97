"""Cluster calls: members, leadership, status, health, metrics, events, faults.

Membership changes and leadership transfer run on the leader; a follower forwards
them (see abcd/node/cluster_ops.py), with the caller's token, so the leader checks the
caller too.  When auth is on, they and the faults need root (a joining node may
present the cluster token instead); reading members, status, health, metrics and
events stays open (the dashboard's page reads them; they hold no keys or values).
"""
from __future__ import annotations

import asyncio
import os

import aiohttp
import orjson
from aiohttp import web

from ..kv import KVError
from ..node import cluster_ops
from ..node.forward import CLUSTER_TOKEN_HEADER
from ..node.metrics import CONTENT_TYPE, render
from ..node.responses import ok
from .jsonio import NODE, WEBSOCKETS, BadInput, error_response, is_forwarded, json_response, read_json
from .jsonio import require_websocket
from .auth import forwarding_headers, kv_error, require_root
from .peers import refuse_non_peer

EVENT_FRAME_INTERVAL = 0.05  # seconds between two frames to one /v1/events watcher
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")


async def members(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return json_response(ok({"members": node.membership.describe(node.view)}))


def _root_headers(request: web.Request, what: str) -> dict | None:
    """The headers to pass on to the leader; KVError 401/403 unless the caller is root
    (when auth is on)."""
    return forwarding_headers(require_root(request, what))


async def add_member(request: web.Request) -> web.Response:
    refused = refuse_non_peer(request)  # a joining node presents its peer certificate
    if refused is not None:
        return refused
    node = request.app[NODE]
    body = await read_json(request)
    token = request.headers.get(CLUSTER_TOKEN_HEADER)
    headers = None
    # A node joining with the cluster's token is a peer, not a user: the token is its proof.
    joining = node.config.cluster_token is not None and cluster_ops.check_join_token(node, token) is None
    if not joining:
        try:
            headers = _root_headers(request, "add members")
        except KVError as e:
            return kv_error(e)
    return json_response(
        await cluster_ops.add_member(node, body, forwarded=is_forwarded(request), token=token, auth_headers=headers)
    )


async def remove_member(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        headers = _root_headers(request, "remove members")
    except KVError as e:
        return kv_error(e)
    response = await cluster_ops.remove_member(
        node, request.match_info["id"], forwarded=is_forwarded(request), auth_headers=headers
    )
    return json_response(response)


async def promote_member(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        headers = _root_headers(request, "promote members")
    except KVError as e:
        return kv_error(e)
    response = await cluster_ops.promote_member(
        node, request.match_info["id"], forwarded=is_forwarded(request), auth_headers=headers
    )
    return json_response(response)


async def transfer_leader(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        headers = _root_headers(request, "transfer leadership")
    except KVError as e:
        return kv_error(e)
    body = await read_json(request)
    return json_response(
        await cluster_ops.transfer_leadership(node, body, forwarded=is_forwarded(request), auth_headers=headers)
    )


async def status(request: web.Request) -> web.Response:
    return json_response(ok(request.app[NODE].status()))


async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if node.healthy():
        return json_response(ok({"health": "ok", "leader": node.view.leader_id}))
    soft = node.view.soft
    if soft.leader_id is None:
        reason = "no leader is known"
    else:
        reason = f"applied {node.store.applied_index} of commit index {soft.commit_index}"
    return error_response(503, "unhealthy", reason, retry_after=1)


async def metrics(request: web.Request) -> web.Response:
    body = render(request.app[NODE].metrics)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def events(request: web.Request) -> web.WebSocketResponse:
    """The node's event stream: frames are JSON lists of events (see docs/api.md)."""
    require_websocket(request, "the node's event stream")
    node = request.app[NODE]
    ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
    await ws.prepare(request)
    sockets: set = request.app[WEBSOCKETS]
    sockets.add(ws)
    subscription = node.hub.subscribe()

    async def drain_incoming() -> None:
        async for _ in ws:  # clients send nothing; this notices the close
            pass

    reader = asyncio.get_running_loop().create_task(drain_incoming())
    try:
        await ws.send_frame(orjson.dumps([node.live_events.status_event()]), aiohttp.WSMsgType.TEXT)
        while not ws.closed:
            next_batch = asyncio.ensure_future(subscription.next_batch())
            await asyncio.wait({next_batch, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not next_batch.done():
                next_batch.cancel()
                break
            batch = next_batch.result()
            if subscription.dropped:
                batch.insert(0, {"type": "dropped", "count": subscription.dropped})
                subscription.dropped = 0
            await ws.send_frame(orjson.dumps(batch, default=str), aiohttp.WSMsgType.TEXT)
            # At most one frame per EVENT_FRAME_INTERVAL: what comes meanwhile waits in the
            # watcher's bounded queue and leaves in the next frame, so a busy node writes
            # a few frames a second per watcher, not one per event.
            await asyncio.wait({reader}, timeout=EVENT_FRAME_INTERVAL)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        node.hub.unsubscribe(subscription)
        reader.cancel()
        sockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


def _faults_disabled() -> web.Response:
    return error_response(403, "forbidden", "fault injection is disabled; start the node with --enable-faults")


async def set_faults(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        require_root(request, "set network faults")
    except KVError as e:
        return kv_error(e)
    if node.faults is None:
        return _faults_disabled()
    body = await read_json(request)
    try:
        node.faults.configure(body)
    except ValueError as e:
        raise BadInput(str(e)) from None
    node.logger.bind(event="Faults").warning("network faults set: {}", node.faults.to_json())
    return json_response(ok(node.faults.to_json()))


async def heal_faults(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        require_root(request, "heal network faults")
    except KVError as e:
        return kv_error(e)
    if node.faults is None:
        return _faults_disabled()
    node.faults.heal()
    node.logger.bind(event="Faults").warning("network faults healed")
    return json_response(ok(node.faults.to_json()))


async def index(request: web.Request) -> web.StreamResponse:
    page = os.path.join(STATIC_DIR, "index.html")
    if os.path.exists(page):
        return web.FileResponse(page)
    node = request.app[NODE]
    text = (
        f"abcd node {node.config.name} (id {node.node_id}) of cluster {node.cluster_id}\n"
        "API: /v1/kv, /v1/txn, /v1/session, /v1/members, /v1/status, /healthz, /metrics, /v1/events\n"
    )
    return web.Response(text=text)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/members", members)
    r.add_post("/v1/members", add_member)
    r.add_delete("/v1/members/{id}", remove_member)
    r.add_post("/v1/members/{id}/promote", promote_member)
    r.add_post("/v1/leader/transfer", transfer_leader)
    r.add_get("/v1/status", status)
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/v1/events", events)
    r.add_post("/v1/admin/faults", set_faults)
    r.add_delete("/v1/admin/faults", heal_faults)
    r.add_get("/", index)
    if os.path.isdir(STATIC_DIR):
        r.add_static("/static/", STATIC_DIR)
