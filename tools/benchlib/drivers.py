"""Client loops, closed-loop: each of C virtual clients sends its next request as soon as
its previous one is answered, so exactly C requests are in flight.

- SessionDriver: abcd's pipelined `/v1/session` websocket.  One connection carries many
  clients; every answer frame is processed in one go and the follow-up requests leave
  together in one frame, so the client batches per loop turn just as the server does.
- HttpDriver: one HTTP request per operation on keep-alive connections (one per client):
  abcd's plain HTTP API, or etcd's v3 JSON gateway (`POST /v3/kv/put`, base64 keys).

Latency is measured from just before the request is handed to the socket to the moment
its answer is read; only operations completing inside the measurement window count.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from array import array
from collections import Counter
from dataclasses import dataclass

import aiohttp
import orjson

from .workload import Workload, b64

DRAIN_TIMEOUT_S = 10.0
ERROR_SAMPLES = 5


class DriverError(RuntimeError):
    """The load could not be generated (connection refused, session closed…)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Load runs from `start` to `measure_until`; figures count from `measure_from`."""

    start: float
    measure_from: float
    measure_until: float


class Recorder:
    """Latencies of successful operations and errors by kind, inside the window."""

    def __init__(self, window: Window, progress=None, slot: int = 0) -> None:
        self.window = window
        self.latencies = array("d")
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self._progress = progress
        self._slot = slot

    def success(self, t0: float, t1: float) -> None:
        if self.window.measure_from <= t1 <= self.window.measure_until:
            self.latencies.append(t1 - t0)

    def failure(self, t1: float, kind: str, detail: str) -> None:
        if self.window.measure_from <= t1 <= self.window.measure_until:
            self.errors[kind] += 1
            if len(self.error_samples) < ERROR_SAMPLES:
                self.error_samples.append(f"{kind}: {detail[:200]}")

    def completed(self, n: int) -> None:
        """Live count for the progress line (all operations, warm-up included)."""
        if self._progress is not None:
            self._progress[self._slot] += n


class SessionDriver:
    def __init__(
        self, endpoint: str, clients: int, workload: Workload, recorder: Recorder, cacert: str | None = None,
        token: str | None = None,
    ) -> None:
        self.url = f"{'https' if cacert else 'http'}://{endpoint}/v1/session"
        self._ssl = ssl.create_default_context(cafile=cacert) if cacert else True
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.clients = clients
        self.workload = workload
        self.rec = recorder
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 0

    async def connect(self) -> None:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(
                self.url, max_msg_size=0, compress=0, autoping=True, ssl=self._ssl, headers=self.headers
            )
        except (aiohttp.ClientError, OSError) as e:
            await self._http.close()
            raise DriverError(f"cannot open a session at {self.url}: {e}") from None

    def _frame(self, inflight: dict, count: int, clock) -> bytes:
        """The next `count` requests as one frame.  Each is timed from the moment the
        frame is encoded and handed to the socket, like etcdbench's `time.Now()` right
        before `Put`: the driver's own bookkeeping of the answers that came before
        (decoding them, recording, drawing the next keys) is not the request's latency."""
        requests = []
        workload = self.workload
        for _ in range(count):
            self._next_id += 1
            kind, key, arg = workload.next()
            if kind == "put":
                requests.append({"id": self._next_id, "op": "put", "key": key, "value": arg})
            else:
                requests.append({"id": self._next_id, "op": "get", "key": key, "serializable": arg})
        t0 = clock()
        for request in requests:
            inflight[request["id"]] = (t0, request["op"])
        return orjson.dumps(requests)

    async def run(self) -> None:
        ws, rec = self._ws, self.rec
        end = rec.window.measure_until
        inflight: dict[int, tuple[float, str]] = {}
        clock = time.monotonic
        await ws.send_bytes(self._frame(inflight, self.clients, clock))
        drain_deadline = None
        while inflight:
            timeout = None if drain_deadline is None else max(0.0, drain_deadline - clock())
            try:
                message = await asyncio.wait_for(ws.receive(), timeout)
            except asyncio.TimeoutError:
                raise DriverError(f"{len(inflight)} requests unanswered {DRAIN_TIMEOUT_S:.0f}s after the load stopped") from None
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise DriverError(f"the session at {self.url} closed ({message.type.name}, {ws.close_code}: {message.extra})")
            now = clock()
            answers = orjson.loads(message.data)
            for answer in answers:
                t0, kind = inflight.pop(answer["id"])
                status = answer["status"]
                if status == 200 or (status == 404 and kind == "get"):
                    rec.success(t0, now)
                else:
                    rec.failure(now, str(status), _error_text(answer.get("body")))
            rec.completed(len(answers))
            if now < end and answers:
                await ws.send_bytes(self._frame(inflight, len(answers), clock))
            elif drain_deadline is None and now >= end:
                drain_deadline = now + DRAIN_TIMEOUT_S

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()


def _error_text(body) -> str:
    if isinstance(body, dict) and "error" in body:
        return f"{body.get('code', '')} {body['error']}".strip()
    return str(body)


class HttpDriver:
    """One request per operation; `api` is "abcd" (HTTP API) or "etcd" (v3 JSON gateway)."""

    def __init__(
        self, api: str, endpoints: list[str], workload: Workload, recorder: Recorder, cacert: str | None = None,
        token: str | None = None,
    ) -> None:
        self.api = api
        self.token = token
        self._scheme = "https" if cacert else "http"
        self._ssl = ssl.create_default_context(cafile=cacert) if cacert else True
        self.endpoints = endpoints  # one per virtual client
        self.workload = workload
        self.rec = recorder
        self._http: aiohttp.ClientSession | None = None
        if api == "etcd":
            self._b64 = {v: b64(v) for v in workload.values}  # str hashes are cached: a cheap lookup

    async def connect(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False, ssl=self._ssl)
        self._http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))

    def _build(self, endpoint: str) -> tuple[str, str, bytes | None, str]:
        kind, key, arg = self.workload.next()
        if self.api == "abcd":
            if kind == "put":
                return "PUT", f"{self._scheme}://{endpoint}/v1/kv/{key}", orjson.dumps({"value": arg}), kind
            query = "?serializable=true" if arg else ""
            return "GET", f"{self._scheme}://{endpoint}/v1/kv/{key}{query}", None, kind
        if kind == "put":
            body = orjson.dumps({"key": b64(key), "value": self._b64[arg]})
            return "POST", f"http://{endpoint}/v3/kv/put", body, kind
        body = {"key": b64(key), "serializable": bool(arg)}
        return "POST", f"http://{endpoint}/v3/kv/range", orjson.dumps(body), kind

    async def _client(self, endpoint: str) -> None:
        http, rec, clock = self._http, self.rec, time.monotonic
        end = rec.window.measure_until
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        while True:
            method, url, body, kind = self._build(endpoint)
            t0 = clock()
            if t0 >= end:
                return
            try:
                async with http.request(method, url, data=body, headers=headers) as reply:
                    text = await reply.read()
                    status = reply.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                now = clock()
                rec.failure(now, type(e).__name__, str(e))
                rec.completed(1)
                if now < end:
                    await asyncio.sleep(0.05)  # a refused connection would otherwise spin
                continue
            now = clock()
            if status == 200 or (status == 404 and kind == "get" and self.api == "abcd"):
                rec.success(t0, now)
            else:
                rec.failure(now, str(status), text.decode(errors="replace"))
            rec.completed(1)

    async def run(self) -> None:
        tasks = [asyncio.ensure_future(self._client(e)) for e in self.endpoints]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


async def preload(api: str, endpoint: str, keys: list[str], value: str) -> None:
    """Write every key once, so reads find values (etcd through its gateway)."""
    async with aiohttp.ClientSession() as http:
        if api == "abcd":
            ws = await http.ws_connect(f"http://{endpoint}/v1/session", max_msg_size=0, compress=0)
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                await ws.send_bytes(orjson.dumps(
                    [{"id": i, "op": "put", "key": k, "value": value} for i, k in enumerate(chunk)]))
                pending = len(chunk)
                while pending:
                    message = await ws.receive(timeout=30)
                    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        raise DriverError(f"preload: the session at {endpoint} closed ({message.extra})")
                    answers = orjson.loads(message.data)
                    bad = [a for a in answers if a["status"] != 200]
                    if bad:
                        raise DriverError(f"preload: put failed: {bad[0]}")
                    pending -= len(answers)
            await ws.close()
            return
        await etcd_put_all(http, endpoint, ((key, value) for key in keys), writers=32)


async def etcd_put_all(http: aiohttp.ClientSession, endpoint: str, items, writers: int, done=None) -> None:
    """Put every (key, value) of the iterator `items` through etcd's JSON gateway, one put
    per request, `writers` requests in flight; `done(1)` after each answered put."""
    async def writer() -> None:
        for key, value in items:  # one iterator shared by all writers: each item is put once
            body = orjson.dumps({"key": b64(key), "value": b64(value)})
            async with http.post(f"http://{endpoint}/v3/kv/put", data=body) as reply:
                if reply.status != 200:
                    raise DriverError(f"etcd put at {endpoint} answered {reply.status}: {await reply.text()}")
            if done is not None:
                done(1)

    await asyncio.gather(*(writer() for _ in range(writers)))
