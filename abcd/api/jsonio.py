"""Small helpers shared by the API handlers: JSON in, JSON out, errors in one shape."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..node.forward import FORWARDED_HEADER
from ..node.responses import Response

JSON = "application/json"

# The app's state: the node it serves, and the open client websockets (closed at shutdown).
NODE: web.AppKey = web.AppKey("node", object)
WEBSOCKETS: web.AppKey = web.AppKey("websockets", set)


def json_response(response: Response) -> web.Response:
    headers = {"Retry-After": str(response.retry_after)} if response.retry_after is not None else None
    return web.Response(body=orjson.dumps(response.body), status=response.status, content_type=JSON, headers=headers)


def error_response(status: int, code: str, message: str, *, retry_after: int | None = None) -> web.Response:
    return json_response(Response(status, {"error": message, "code": code}, retry_after))


class BadInput(Exception):
    """Raised by the parsing helpers; the middleware answers 400 with its message."""


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadInput("the request body is empty; expected a JSON object")
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadInput(f"the body is not valid JSON: {e}") from None


def read_object(body: Any, allowed: set[str], what: str) -> dict:
    if not isinstance(body, dict):
        raise BadInput(f"{what} must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r} in {what}; expected {', '.join(sorted(allowed))}")
    return body


def query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise BadInput(f"query parameter {name} must be true or false, got {raw!r}")


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"query parameter {name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise BadInput(f"query parameter {name} must be >= 0, got {value}")
    return value


def query_parameters(*names: str):
    """Declare the query parameters a handler takes; the app refuses any other (400),
    so that a typo (`?revison=2`) is an error rather than a silently different request.
    A handler of `/v1/...`, `/healthz` or `/metrics` that declares none takes none."""

    def declare(handler):
        handler.query_parameters = frozenset(names)
        return handler

    return declare


def check_query(request: web.Request) -> None:
    """BadInput naming the first query parameter the matched handler does not take."""
    handler = request.match_info.handler
    allowed = getattr(handler, "query_parameters", frozenset())
    unknown = sorted(set(request.query) - allowed)
    if not unknown:
        return
    route = getattr(request.match_info.route.resource, "canonical", request.path)
    takes = f"takes {', '.join(sorted(allowed))}" if allowed else "takes no query parameters"
    raise BadInput(f"unknown query parameter {unknown[0]!r}; {request.method} {route} {takes}")


def require_websocket(request: web.Request, what: str) -> None:
    """BadInput unless the request asks for a websocket upgrade (a plain GET of a
    websocket endpoint would otherwise get aiohttp's bare "Bad Request")."""
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise BadInput(
            f"{request.path} is {what} over a websocket: connect with a websocket client "
            "(a GET with Connection: Upgrade and Upgrade: websocket), not a plain HTTP request"
        )


def is_forwarded(request: web.Request) -> bool:
    """A call another member passed on to this one (never passed on again)."""
    return request.headers.get(FORWARDED_HEADER) == "1"
