"""The node's aiohttp application: one port for peers, clients, metrics and the dashboard.

Every error is `{"error", "code"}` with the status codes of docs/api.md: the
`errors_as_json` middleware turns parsing errors into 400, aiohttp's own errors (unknown path,
wrong method, body too large) into the same shape, and any unexpected exception into
a logged 500, so that no input, however malformed, takes the node down.  The `cors`
middleware (cors.py) wraps it, so that an error answered to a page is readable too.
"""
from __future__ import annotations

import socket

import loguru
from aiohttp import web

from ..kv import MAX_VALUE_BYTES
from ..net import RAFT_PATH
from . import auth, backup, cluster, kv, lease, watch
from .cors import cors
from .jsonio import NODE, WEBSOCKETS, BadInput, check_query, error_response
from .peers import TLS, peers_only
from .session import handle_session

# A value may be 1 MiB of UTF-8, which JSON escaping can grow; larger bodies get 413.
MAX_BODY_BYTES = 8 * MAX_VALUE_BYTES

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except BadInput as e:
        return error_response(400, "bad_request", str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _CODES.get(e.status, "http_error")
        message = e.reason if e.status != 404 else f"no such endpoint: {request.method} {request.path}"
        if e.status == 413:
            message = f"the request body is too large (limit {MAX_BODY_BYTES} bytes)"
        return error_response(e.status, code, message)
    except Exception as e:
        loguru.logger.opt(exception=e).error("{} {} failed", request.method, request.path)
        return error_response(500, "internal", f"internal error: {type(e).__name__}: {e}")


# The API's paths: their handlers declare the query parameters they take (jsonio.query_parameters).
_CHECKED_PREFIXES = ("/v1/", "/healthz", "/metrics")


@web.middleware
async def known_query_parameters(request: web.Request, handler):
    if request.match_info.http_exception is None and request.path.startswith(_CHECKED_PREFIXES):
        check_query(request)
    return await handler(request)


def create_app(node, tls=None) -> web.Application:
    app = web.Application(middlewares=[cors, errors_as_json, known_query_parameters], client_max_size=MAX_BODY_BYTES)
    app[NODE] = node
    app[WEBSOCKETS] = set()
    if tls is not None:
        app[TLS] = tls
    app.router.add_get(RAFT_PATH, peers_only(node.transport.handle_inbound))
    app.router.add_get("/v1/session", handle_session)
    kv.add_routes(app)
    cluster.add_routes(app)
    watch.add_routes(app)
    lease.add_routes(app)
    backup.add_routes(app)
    auth.add_routes(app)
    app.on_shutdown.append(_close_websockets)
    return app


async def _close_websockets(app: web.Application) -> None:
    for ws in list(app[WEBSOCKETS]):
        await ws.close(code=1001, message=b"node shutting down")


class Server:
    """Runs the app on a listening socket (bound beforehand, so the port is known).

    With `tls` (abcd.tls.TlsContexts) every connection is TLS.
    """

    def __init__(self, node, sock: socket.socket, tls=None) -> None:
        self._app = create_app(node, tls)
        self._sock = sock
        self._tls = tls
        self._runner = web.AppRunner(self._app, handle_signals=False, access_log=None, shutdown_timeout=2.0)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.SockSite(self._runner, self._sock, ssl_context=self._tls.server if self._tls else None)
        await site.start()

    async def stop(self) -> None:
        await self._runner.cleanup()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock
