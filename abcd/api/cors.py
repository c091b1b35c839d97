"""Cross-origin requests: which web pages may call this node from a browser.

The dashboard is served by every member, and a page opened on one member reads the
others too (and a supervisor may serve it from its own port).  A browser lets such a
page read an answer only if the answer names the page's origin in
`Access-Control-Allow-Origin`.  A node names it when the origin is `http://<address>`
(`https://<address>` for a node that speaks TLS)
of a current member (the member table of its log), or one given with
`--allow-origin`; any other origin gets no CORS header, so the browser keeps the
answer from it.  Calls from programs (no `Origin` header) are not affected.

A preflight (`OPTIONS` with `Access-Control-Request-Method`, which a browser sends
before a PUT, POST or DELETE with a JSON body) is answered here with 204 for an
allowed origin and `403 forbidden` for another.  Websockets need no CORS: the
browser opens `/v1/events`, `/v1/session` and `/v1/watch` on any member.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from .jsonio import NODE, error_response

ALLOW_METHODS = "GET, POST, PUT, DELETE"
ALLOW_HEADERS = "Content-Type, X-Request-Id, Authorization"
EXPOSE_HEADERS = "Retry-After"
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may reuse a preflight's answer


def parse_origin(text: str) -> str:
    """The origin `text` names ("http://host:port", lower case); ValueError if it is not one."""
    parts = urlsplit(text.strip())
    example = "give scheme, host and port only, such as http://127.0.0.1:8079"
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"{text!r} is not an origin: {example}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as e:
        raise ValueError(f"{text!r} is not an origin ({e}): {example}") from None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def origin_allowed(node, origin: str) -> bool:
    if origin in node.config.allow_origins:
        return True
    # A member's own pages: http://ADDRESS, or https://ADDRESS when the node speaks TLS.
    scheme = "https://" if getattr(node, "tls", None) is not None else "http://"
    if origin.startswith(scheme):
        return node.membership.find_by_address(origin[len(scheme):]) is not None
    return False


@web.middleware
async def cors(request: web.Request, handler):
    origin = request.headers.get("Origin")
    if origin is None:
        return await handler(request)
    allowed = origin_allowed(request.app[NODE], origin)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not allowed:
            return error_response(
                403, "forbidden",
                f"origin {origin} may not call this node from a browser: it is not a member's address "
                "(http://HOST:PORT) nor one given with --allow-origin",
            )
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                "Vary": "Origin",
            },
        )
    response = await handler(request)
    # A websocket's answer is already sent (prepared) and needs no CORS header.
    if allowed and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers["Vary"] = "Origin"
    return response
