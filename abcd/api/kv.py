"""The key-value calls of the HTTP API: /v1/kv, /v1/txn, /v1/compact (docs/api.md).

Each call is translated into the request a session frame would carry and handed to
the node, so HTTP and the session channel answer exactly alike.  A client may send
`X-Request-Id: <client>:<seq>`; a retried write with the same id applies at most once.
"""
from __future__ import annotations

from aiohttp import web

from .auth import credential_of
from .jsonio import NODE, error_response, json_response, query_bool, query_int, query_parameters, read_json, read_object

REQUEST_ID_HEADER = "X-Request-Id"


def with_request_id(request: web.Request, op: dict) -> dict:
    request_id = request.headers.get(REQUEST_ID_HEADER)
    if request_id is not None:
        op["request_id"] = request_id
    return op


async def _submit(request: web.Request, op: dict) -> web.Response:
    node = request.app[NODE]
    return json_response(await node.submit(op, credential=credential_of(request)))


async def put(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"value", "lease", "request_id"}, "the PUT body")
    op = {**body, "op": "put", "key": request.match_info["key"]}
    return await _submit(request, with_request_id(request, op))


@query_parameters("serializable", "revision")
async def get(request: web.Request) -> web.Response:
    op = {"op": "get", "key": request.match_info["key"]}
    serializable = query_bool(request, "serializable")
    if serializable is not None:
        op["serializable"] = serializable
    revision = query_int(request, "revision")
    if revision is not None:
        op["revision"] = revision
    return await _submit(request, op)


@query_parameters("prefix", "limit", "revision", "serializable")
async def range_(request: web.Request) -> web.Response:
    op = {"op": "range", "prefix": request.query.get("prefix", "")}
    for name in ("limit", "revision"):
        value = query_int(request, name)
        if value is not None:
            op[name] = value
    serializable = query_bool(request, "serializable")
    if serializable is not None:
        op["serializable"] = serializable
    return await _submit(request, op)


@query_parameters("prefix")
async def delete(request: web.Request) -> web.Response:
    op = {"op": "delete", "key": request.match_info["key"]}
    prefix = query_bool(request, "prefix")
    if prefix is not None:
        op["prefix"] = prefix
    return await _submit(request, with_request_id(request, op))


async def txn(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"compare", "success", "failure", "request_id"}, "the txn body")
    return await _submit(request, with_request_id(request, {**body, "op": "txn"}))


async def compact(request: web.Request) -> web.Response:
    """Forget the history below a revision, on every member (through the log)."""
    body = read_object(await read_json(request), {"revision", "request_id"}, "the compact body")
    return await _submit(request, with_request_id(request, {**body, "op": "compact"}))


async def empty_key(request: web.Request) -> web.Response:
    return error_response(400, "bad_request", "key must be a non-empty string (the path is /v1/kv/{key})")


def add_routes(app: web.Application) -> None:
    app.router.add_route("PUT", "/v1/kv/{key:.+}", put)
    app.router.add_route("GET", "/v1/kv/{key:.+}", get)
    app.router.add_route("DELETE", "/v1/kv/{key:.+}", delete)
    app.router.add_route("*", "/v1/kv/", empty_key)
    app.router.add_route("GET", "/v1/kv", range_)
    app.router.add_route("POST", "/v1/txn", txn)
    app.router.add_route("POST", "/v1/compact", compact)
