"""Serve a recorded run with the dashboard: `python -m abcd.sim --record run.json --serve`.

The page is the nodes' own dashboard (abcd/api/static): `/` answers its index.html and
`/static/...` the rest; the run is at `/run.json`, and the page replays the file named
by its `run` query parameter.  Loopback only, until Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import asyncio
import os
import signal

from aiohttp import web

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "api", "static")
HOST = "127.0.0.1"


def replay_url(port: int) -> str:
    return f"http://{HOST}:{port}/?run=/run.json"


def make_app(run_path: str, static_dir: str = STATIC_DIR) -> web.Application:
    async def index(request: web.Request) -> web.StreamResponse:
        page = os.path.join(static_dir, "index.html")
        if os.path.exists(page):
            return web.FileResponse(page)
        return web.Response(text="abcd simulator: the dashboard's page is not installed; the recorded run is at /run.json\n")

    async def run(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(run_path, headers={"Content-Type": "application/json", "Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/run.json", run)
    if os.path.isdir(static_dir):
        app.router.add_static("/static/", static_dir)
    return app


async def _serve(run_path: str, port: int) -> None:
    runner = web.AppRunner(make_app(run_path), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        print(f"abcd.sim: serving the run at {replay_url(port)} (Ctrl-C stops)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(run_path: str, port: int) -> int:
    """Serve until Ctrl-C or SIGTERM; 0, or 1 with a message if the port is taken."""
    try:
        asyncio.run(_serve(run_path, port))
    except OSError as error:
        print(f"abcd.sim: cannot listen on {HOST}:{port}: {error.strerror or error}", flush=True)
        return 1
    return 0
