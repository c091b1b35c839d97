"""Watch members' `/v1/events` as an open dashboard does, and say what came.

    python tools/watch_events.py 127.0.0.1:8080,127.0.0.1:8081,127.0.0.1:8082 [--seconds 30]

One websocket per member, every frame read and parsed as it arrives (as a page would).
Prints `watching N members` once every stream has sent its first frame, then, at the
end (after --seconds, or on Ctrl-C / SIGTERM), the events received per member and
type.  docs/performance.md uses it to measure what open dashboards cost a loaded
cluster.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys

import aiohttp


async def watch(address: str, counts: collections.Counter, connected: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"ws://{address}/v1/events", max_msg_size=0) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                for event in json.loads(message.data):
                    counts[event.get("type", "?")] += 1
                connected.set()


async def main(addresses: list[str], seconds: float | None) -> int:
    counts = {address: collections.Counter() for address in addresses}
    connected = {address: asyncio.Event() for address in addresses}
    tasks = [asyncio.ensure_future(watch(a, counts[a], connected[a])) for a in addresses]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected.values())), 10)
    except asyncio.TimeoutError:
        print("watch_events: not every member sent its first event within 10 s", file=sys.stderr)
        return 1
    print(f"watching {len(addresses)} members", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for address in addresses:
        listed = ", ".join(f"{kind} {n}" for kind, n in sorted(counts[address].items()))
        print(f"{address}: {listed}", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoints", help="H:P[,H:P...] members to watch")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main([e.strip() for e in args.endpoints.split(",") if e.strip()], args.seconds)))
