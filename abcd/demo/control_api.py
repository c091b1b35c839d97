"""The demo's own HTTP server: the dashboard's files and the supervisor's control.

    GET  /                                  the dashboard (abcd/api/static/index.html)
    GET  /static/...                        its scripts and styles
    GET  /demo/members                      {"members": [{port, address, pid, state, since, ...}], "slow"}
    POST /demo/members                      start a new member on the next free port (it joins as a learner)
    POST /demo/members/{port}/stop          SIGTERM, wait for the exit
    POST /demo/members/{port}/kill          SIGKILL (kill -9), wait for the exit
    POST /demo/members/{port}/restart       start it again on its port and data dir
    POST /demo/slow {"slow": true|false}    slow mode on or off (restarts the members one by one)

Answers are JSON; errors are `{"error", "code"}` as on the nodes.  A page served by a
node (http://127.0.0.1:<node port>) may call this API too: those origins get CORS
headers, and the preflight of a POST is answered.
"""
from __future__ import annotations

import os

from aiohttp import web

from .supervisor import DemoError, Supervisor

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "api", "static")
SUPERVISOR: web.AppKey = web.AppKey("supervisor", Supervisor)
ACTIONS = ("stop", "kill", "restart")

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": message, "code": code}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except DemoError as e:
        return error(e.status, e.code, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        message = e.reason
        if e.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif isinstance(e, web.HTTPMethodNotAllowed):
            message = f"{request.method} is not allowed on {request.path}; use {', '.join(sorted(e.allowed_methods))}"
        return error(e.status, _CODES.get(e.status, "http_error"), message)


@web.middleware
async def cors(request: web.Request, handler):
    """The nodes' pages may read and drive the demo: their origins get CORS headers."""
    origin = request.headers.get("Origin")
    scheme = "https" if request.app[SUPERVISOR].tls is not None else "http"
    allowed = origin in {f"{scheme}://127.0.0.1:{port}" for port in request.app[SUPERVISOR].members}
    if request.method == "OPTIONS" and request.path.startswith("/demo/"):
        response = web.Response(status=204)  # a preflight: say what a later call may do
        if allowed:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


async def members(request: web.Request) -> web.Response:
    return web.json_response(request.app[SUPERVISOR].describe())


async def add_member(request: web.Request) -> web.Response:
    if await request.read():
        raise DemoError(400, "bad_request", "POST /demo/members takes no body: the demo picks the port")
    return web.json_response({"member": await request.app[SUPERVISOR].add()})


async def act(request: web.Request) -> web.Response:
    raw_port, action = request.match_info["port"], request.match_info["action"]
    try:
        port = int(raw_port)
    except ValueError:
        raise DemoError(400, "bad_request", f"the port in the path must be an integer, got {raw_port!r}") from None
    if action not in ACTIONS:
        raise DemoError(404, "not_found", f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    supervisor = request.app[SUPERVISOR]
    run = {"stop": supervisor.stop, "kill": supervisor.kill, "restart": supervisor.start}[action]
    return web.json_response({"member": await run(port)})


async def set_slow(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise DemoError(400, "bad_request", 'the body must be JSON: {"slow": true} or {"slow": false}') from None
    if not isinstance(body, dict) or set(body) != {"slow"} or not isinstance(body["slow"], bool):
        raise DemoError(400, "bad_request", f'the body must be {{"slow": true}} or {{"slow": false}}, got {repr(body)[:200]}')
    return web.json_response(await request.app[SUPERVISOR].set_slow(body["slow"]))


async def index(request: web.Request) -> web.StreamResponse:
    page = os.path.join(STATIC_DIR, "index.html")
    if os.path.exists(page):
        return web.FileResponse(page)
    nodes = "\n".join(f"  http://{m['address']}/" for m in request.app[SUPERVISOR].describe()["members"])
    text = (
        "abcd demo: the dashboard's files (abcd/api/static/) are missing from this installation.\n"
        f"The control API is at /demo/members; the nodes are:\n{nodes}\n"
    )
    return web.Response(text=text)


def create_app(supervisor: Supervisor) -> web.Application:
    app = web.Application(middlewares=[cors, errors_as_json], client_max_size=64 * 1024)
    app[SUPERVISOR] = supervisor
    app.router.add_get("/demo/members", members)
    app.router.add_post("/demo/members", add_member)
    app.router.add_post("/demo/members/{port}/{action}", act)
    app.router.add_post("/demo/slow", set_slow)
    app.router.add_get("/", index)
    if os.path.isdir(STATIC_DIR):
        app.router.add_static("/static/", STATIC_DIR)
    return app

