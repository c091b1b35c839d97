"""Lease calls: grant, keepalive, revoke (docs/api.md).

A lease has an id (allocated in apply order) and a TTL in seconds; keys put with
`"lease": id` are deleted when it is revoked or expires.  The leader keeps the clock
(abcd/node/leases.py): a keepalive reaches the leader (a follower forwards it) and
pushes the expiry back by a full TTL.
"""
from __future__ import annotations

from aiohttp import web

from .auth import credential_of
from .jsonio import NODE, BadInput, json_response, read_json, read_object
from .kv import with_request_id


def _lease_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"lease id must be an integer, got {raw!r}") from None
    return value


async def grant(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"ttl", "request_id"}, "the lease body")
    op = with_request_id(request, {**body, "op": "lease_grant"})
    return json_response(await request.app[NODE].submit(op, credential=credential_of(request)))


async def keepalive(request: web.Request) -> web.Response:
    op = {"op": "lease_keepalive", "lease": _lease_id(request)}
    return json_response(await request.app[NODE].submit(op, credential=credential_of(request)))


async def revoke(request: web.Request) -> web.Response:
    op = with_request_id(request, {"op": "lease_revoke", "lease": _lease_id(request)})
    return json_response(await request.app[NODE].submit(op, credential=credential_of(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/lease", grant)
    app.router.add_post("/v1/lease/{id}/keepalive", keepalive)
    app.router.add_delete("/v1/lease/{id}", revoke)
