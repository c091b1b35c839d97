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


def is_forwarded(request: web.Request) -> bool:
    """A call another member passed on to this one (never passed on again)."""
    return request.headers.get(FORWARDED_HEADER) == "1"
