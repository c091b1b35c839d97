"""`python -m abcd demo`: start the nodes and the dashboard, run until Ctrl-C or SIGTERM.

A new cluster: node 1 bootstraps on --base-port and the others join through it, one
after the other.  When ./abcd-data/node-<base port> already holds a node (a demo run
before), every node resumes from its data dir.  The dashboard and the control API are
served on --dashboard-port from the start, so that the page can watch the nodes come
up.  On Ctrl-C (or SIGTERM) every node gets SIGTERM, which makes it flush, fsync and
exit; the demo waits for them all and exits 0.  A node that exits on its own does not
stop the demo: it is shown as exited and can be restarted.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from aiohttp import web

from .control_api import create_app
from . import tls as demo_tls
from .supervisor import DATA_ROOT, SLOW_ELECTION_TIMEOUT_MS, SLOW_HEARTBEAT_MS, Supervisor


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abcd demo", description="Start a local abcd cluster and its dashboard; Ctrl-C stops it."
    )
    p.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    p.add_argument("--base-port", type=int, default=8080, help="port of the first node; the others follow (default 8080)")
    p.add_argument("--dashboard-port", type=int, help="port of the dashboard and the control API (default: base port - 1)")
    p.add_argument(
        "--slow", action="store_true",
        help=f"heartbeat {SLOW_HEARTBEAT_MS} ms and election timeout {SLOW_ELECTION_TIMEOUT_MS} ms, to follow an election by eye",
    )
    p.add_argument("--log-level", default="WARNING", help="the nodes' log level on the terminal (default WARNING)")
    p.add_argument(
        "--tls", action="store_true",
        help="a TLS cluster: a CA and certificates made in abcd-data/tls (needs the cryptography package)",
    )
    return p


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 15:
        parser.error(f"--nodes must be between 1 and 15, got {args.nodes}")
    ports = [args.base_port + i for i in range(args.nodes)]
    if not 0 < ports[0] or ports[-1] > 65535:
        parser.error(f"--base-port {args.base_port} leaves no room for {args.nodes} nodes below port 65536")
    dashboard_port = args.base_port - 1 if args.dashboard_port is None else args.dashboard_port
    if args.dashboard_port is None and dashboard_port < 1:
        parser.error(f"--base-port {args.base_port} leaves no port below it for the dashboard; give --dashboard-port")
    if not 0 < dashboard_port < 65536:
        parser.error(f"--dashboard-port must be between 1 and 65535, got {dashboard_port}")
    if dashboard_port in ports:
        parser.error(f"--dashboard-port {dashboard_port} is one of the nodes' ports {ports[0]}-{ports[-1]}")
    return asyncio.run(run(args, ports, dashboard_port))


async def run(args: argparse.Namespace, ports: list[int], dashboard_port: int) -> int:
    tls = None
    if args.tls:
        try:
            tls = demo_tls.ensure(os.path.join(DATA_ROOT, "tls"))
        except ImportError as e:
            print(f"abcd demo: --tls: {e}", file=sys.stderr)
            return 1
    dashboard = f"{'https' if tls else 'http'}://127.0.0.1:{dashboard_port}"
    supervisor = Supervisor(ports, log_level=args.log_level, slow=args.slow, allow_origin=dashboard, tls=tls)
    runner = web.AppRunner(create_app(supervisor), access_log=None)
    await runner.setup()
    try:
        ssl_context = tls.server_context() if tls else None
        await web.TCPSite(runner, "127.0.0.1", dashboard_port, ssl_context=ssl_context).start()
    except OSError as e:
        print(f"abcd demo: cannot serve the dashboard on 127.0.0.1:{dashboard_port}: {e}", file=sys.stderr)
        await runner.cleanup()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    code = 0
    try:
        starting = asyncio.ensure_future(supervisor.start_all())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            starting.cancel()  # Ctrl-C while the nodes come up: stop those already started
        elif not starting.result():
            code = 1
        else:
            print_hints(args, ports, dashboard, tls)
            await stopping
    finally:
        print("abcd demo: stopping", file=sys.stderr, flush=True)
        await supervisor.stop_all()
        await runner.cleanup()
    return code


def print_hints(args: argparse.Namespace, ports: list[int], dashboard: str, tls=None) -> None:
    first = f"127.0.0.1:{ports[0]}"
    slow = f" (slow: heartbeat {SLOW_HEARTBEAT_MS} ms, election timeout {SLOW_ELECTION_TIMEOUT_MS} ms)" if args.slow else ""
    scheme = "https" if tls else "http"
    curl = f"curl --cacert {tls.ca}" if tls else "curl"
    lines = [
        f"abcd demo: dashboard {dashboard}/",
        f"abcd demo: {args.nodes} nodes on ports {ports[0]}-{ports[-1]}, data in {os.path.abspath('abcd-data')}{slow}",
        f"  node info  {scheme}://{first}/",
        f"  status     {curl} {scheme}://{first}/v1/status",
        f"  put / get  {curl} -X PUT -d '{{\"value\": \"x\"}}' {scheme}://{first}/v1/kv/a ; {curl} {scheme}://{first}/v1/kv/a",
        f"  members    {curl} {dashboard}/demo/members ; {curl} -X POST {dashboard}/demo/members/{ports[-1]}/kill (or stop, restart)",
        f"             {curl} -X POST {dashboard}/demo/members   (starts a new member, which joins as a learner)",
    ]
    if tls:
        endpoints = ",".join(f"127.0.0.1:{p}" for p in ports)
        lines += [
            f"  TLS        certificates in {tls.directory} (a browser must be told to trust {tls.ca})",
            f"  abcdctl    abcdctl --endpoints {endpoints} --cacert {tls.ca} put a x",
            f"             (or export ABCD_CACERT={tls.ca}; a client certificate: --cert {tls.path('client.crt')}"
            f" --key {tls.path('client.key')})",
        ]
    lines.append("  Ctrl-C stops the cluster")
    print("\n".join(lines), flush=True)
