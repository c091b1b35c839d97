"""A small fake abcd cluster for client tests: just enough of docs/api.md.

Every FakeNode serves the HTTP KV calls, /v1/txn, leases, /v1/members, /v1/status,
/v1/leader/transfer, /v1/watch and the pipelined /v1/session websocket, on 127.0.0.1 with
an ephemeral port.  The nodes of one FakeCluster share one FakeStore, as a real cluster
shares its replicated state, so a client that fails over sees the same data.

Each node has knobs to misbehave the way real nodes do: answer 503 (no leader), apply a
write and then drop the connection before answering, answer slowly, redirect to another
node, or not offer /v1/session or /v1/watch at all.  Everything a node receives is
recorded for the tests to inspect.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote

import orjson
from aiohttp import WSMsgType, web


def free_port() -> int:
    """A port nothing listens on (for a 'down' endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": message, "code": code}


class FakeStore:
    """A tiny MVCC-ish store with exactly-once request ids."""

    def __init__(self) -> None:
        self.kvs: dict[str, dict] = {}
        self.revision = 1
        self.history: list[tuple[int, dict]] = []  # (revision, event)
        self.answers: dict[str, tuple[int, dict]] = {}  # request_id -> remembered answer
        self.applied = Counter()  # request_id -> times actually applied (must stay <= 1)
        self.leases: dict[int, int] = {}
        self.next_lease = 1
        self.watchers: list[asyncio.Queue] = []

    def execute(self, request: dict) -> tuple[int, dict]:
        rid = request.get("request_id")
        if rid is not None and rid in self.answers:
            return self.answers[rid]
        answer = self._execute(request)
        if rid is not None:
            self.answers[rid] = answer
            self.applied[rid] += 1
        return answer

    def _execute(self, r: dict) -> tuple[int, dict]:
        op = r.get("op")
        key = r.get("key")
        if op in ("put", "get", "delete") and (not isinstance(key, str) or not key):
            return error(400, "bad_request", "key must be a non-empty string")
        if op == "put":
            if not isinstance(r.get("value"), str):
                return error(400, "bad_request", "value must be a string")
            if r.get("lease") and r["lease"] not in self.leases:
                return error(404, "lease_not_found", f"lease {r['lease']} not found")
            self.revision += 1
            prev = self._put(key, r["value"], r.get("lease") or 0)
            return 200, {"revision": self.revision, "prev_kv": prev}
        if op == "get":
            kv = self.kvs.get(key)
            if kv is None:
                return error(404, "not_found", f"key {key!r} not found")
            return 200, {"kv": kv, "revision": self.revision}
        if op == "delete":
            keys = [k for k in self.kvs if (k.startswith(key) if r.get("prefix") else k == key)]
            if keys:
                self.revision += 1
                for k in keys:
                    self._delete(k)
            return 200, {"deleted": len(keys), "revision": self.revision}
        if op == "range":
            keys = sorted(k for k in self.kvs if k.startswith(r.get("prefix", "")))
            limit = r.get("limit") or len(keys)
            return 200, {"kvs": [self.kvs[k] for k in keys[:limit]], "more": len(keys) > limit,
                         "revision": self.revision}
        if op == "txn":
            return self._txn(r)
        return error(400, "bad_request", f"unknown op {op!r}")

    def _put(self, key: str, value: str, lease: int) -> dict | None:
        prev = self.kvs.get(key)
        kv = {"key": key, "value": value, "mod_revision": self.revision, "lease": lease,
              "create_revision": prev["create_revision"] if prev else self.revision,
              "version": prev["version"] + 1 if prev else 1}
        self.kvs[key] = kv
        self._event({"type": "put", "kv": kv, "prev_kv": prev})
        return prev

    def _delete(self, key: str) -> None:
        prev = self.kvs.pop(key)
        self._event({"type": "delete", "kv": dict(prev, value="", version=0, mod_revision=self.revision),
                     "prev_kv": prev})

    def _event(self, event: dict) -> None:
        self.history.append((self.revision, event))
        for q in self.watchers:
            q.put_nowait((self.revision, event))

    def _txn(self, r: dict) -> tuple[int, dict]:
        if not all(isinstance(r.get(f), list) for f in ("compare", "success", "failure")):
            return error(400, "bad_request", "compare, success and failure must be lists")
        ok = all(self._compare(c) for c in r["compare"])
        changed = False
        responses = []
        for o in r["success" if ok else "failure"]:
            if "put" in o:
                if not changed:
                    self.revision += 1
                    changed = True
                prev = self._put(o["put"]["key"], o["put"]["value"], 0)
                responses.append({"put": {"revision": self.revision, "prev_kv": prev}})
            elif "delete" in o:
                k = o["delete"]["key"]
                if k in self.kvs:
                    if not changed:
                        self.revision += 1
                        changed = True
                    self._delete(k)
                responses.append({"delete": {"deleted": 1, "revision": self.revision}})
            else:
                responses.append({"get": {"kv": self.kvs.get(o["get"]["key"]), "revision": self.revision}})
        return 200, {"succeeded": ok, "responses": responses, "revision": self.revision}

    def _compare(self, c: dict) -> bool:
        kv = self.kvs.get(c["key"])
        if c["target"] == "value":
            if kv is None:
                return False
            have = kv["value"]
        else:
            have = kv[c["target"]] if kv else 0
        want = c["value"]
        return {"==": have == want, "!=": have != want, "<": have < want, ">": have > want}[c["op"]]


@dataclass
class Behaviour:
    unavailable: bool = False  # answer 503 to every call (a follower that knows no leader)
    fail_writes: int = 0  # answer 503 to this many more writes
    drop_after_apply: int = 0  # apply this many more writes, then drop the connection unanswered
    delay: float = 0.0  # answer this much later (a slow node)
    session: bool = True  # serve /v1/session
    watch: bool = True  # serve /v1/watch (else 501)
    redirect_to: str | None = None  # answer HTTP calls with 307 to this base URL
    drop_watch_after: int = 0  # close each watch stream abnormally after this many frames
    leases: bool = True  # serve the lease calls (else 501, as a node without leases)


@dataclass
class FakeNode:
    store: FakeStore
    node_id: int
    cluster: "FakeCluster"
    behaviour: Behaviour = field(default_factory=Behaviour)
    frames: list = field(default_factory=list)  # session frames received (lists of requests)
    frames_answered: int = 0
    http: list = field(default_factory=list)  # (method, path, X-Request-Id) of HTTP calls
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/v1/session", self.session)
        app.router.add_get("/v1/watch", self.watch)
        app.router.add_route("*", "/{path:.*}", self.handle_http)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.runner is not None:  # members added through the API never run
            await self.runner.cleanup()

    # ------------------------------------------------------------------ KV requests

    async def kv(self, request: dict) -> tuple[int, dict] | None:
        """Answer one KV request; None means: drop the connection without answering."""
        b = self.behaviour
        if b.delay:
            await asyncio.sleep(b.delay)
        if b.unavailable:
            return error(503, "no_leader", "no leader known")
        is_write = request.get("op") in ("put", "delete", "txn")
        if is_write and b.fail_writes > 0:
            b.fail_writes -= 1
            return error(503, "no_leader", "leader lost; retry")
        answer = self.store.execute(request)
        if is_write and b.drop_after_apply > 0:
            b.drop_after_apply -= 1
            return None
        return answer

    async def session(self, request: web.Request):
        if not self.behaviour.session:
            return web.json_response({"error": "no sessions here", "code": "not_found"}, status=404)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            if not isinstance(frame, list) or not all(isinstance(r, dict) for r in frame):
                await ws.close(code=1003, message=b"a frame must be a JSON list of objects")
                break
            self.frames.append(frame)
            answers = await asyncio.gather(*(self.kv(r) for r in frame))
            if any(a is None for a in answers):
                await ws.close(code=1011, message=b"dropped")
                break
            # Answer in reverse order: the client must match by id, not by position.
            out = [{"id": r["id"], "status": s, "body": body} for r, (s, body) in zip(frame, answers)]
            await ws.send_bytes(orjson.dumps(out[::-1]))
            self.frames_answered += 1
        return ws

    async def watch(self, request: web.Request):
        if not self.behaviour.watch:
            return web.json_response({"error": "watch is not implemented", "code": "not_implemented"}, status=501)
        key, prefix = request.query.get("key"), request.query.get("prefix")
        start = int(request.query.get("start_revision", "0"))
        match = (lambda k: k == key) if key is not None else (lambda k: k.startswith(prefix))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        queue: asyncio.Queue = asyncio.Queue()
        for item in self.store.history:
            if start and item[0] >= start:
                queue.put_nowait(item)
        self.store.watchers.append(queue)
        sent = 0
        closed = asyncio.ensure_future(ws.receive())  # done when the client goes away
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait((getter, closed), return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                revision, event = getter.result()
                if not match(event["kv"]["key"]):
                    continue
                await ws.send_bytes(orjson.dumps({"events": [event], "revision": revision}))
                sent += 1
                if self.behaviour.drop_watch_after and sent >= self.behaviour.drop_watch_after:
                    request.transport.close()  # abnormal end: the client must resume
                    break
        finally:
            closed.cancel()
            self.store.watchers.remove(queue)
        return ws

    # ------------------------------------------------------------------ plain HTTP

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        path = "/" + request.match_info["path"]
        self.http.append((request.method, path, request.headers.get("X-Request-Id")))
        if b.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(b.redirect_to + request.raw_path)
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return self.reply(*error(400, "bad_request", "invalid JSON"))
        answer = await self.route(request, path, body)
        if answer is None:
            request.transport.close()
            raise ConnectionResetError("dropped on purpose")
        return self.reply(*answer)

    @staticmethod
    def reply(status: int, body: dict) -> web.Response:
        headers = {"Retry-After": "0"} if status == 503 else None
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                            headers=headers)

    async def route(self, request: web.Request, path: str, body: dict):
        m, q = request.method, request.query
        rid = request.headers.get("X-Request-Id")
        if path.startswith("/v1/kv/"):
            key = unquote(request.raw_path.split("?")[0][len("/v1/kv/"):])
            r = {"PUT": {"op": "put", "key": key, **body},
                 "GET": {"op": "get", "key": key},
                 "DELETE": {"op": "delete", "key": key, "prefix": q.get("prefix") == "true"}}.get(m)
            if r is None:
                return error(405, "method_not_allowed", m)
            if rid:
                r["request_id"] = rid
            return await self.kv(r)
        if path == "/v1/kv" and m == "GET":
            return await self.kv({"op": "range", "prefix": q.get("prefix", ""), "limit": int(q.get("limit", 0))})
        if path == "/v1/txn" and m == "POST":
            return await self.kv({"op": "txn", **body, **({"request_id": rid} if rid else {})})
        if self.behaviour.unavailable:
            return error(503, "no_leader", "no leader known")
        return self.cluster.admin(self, m, path, body)


class FakeCluster:
    """Fake nodes sharing one store; `down` endpoints refuse connections."""

    def __init__(self, nodes: int = 1) -> None:
        self.store = FakeStore()
        self.nodes = [FakeNode(self.store, i + 1, self) for i in range(nodes)]
        self.leader_id = 1
        self.learners: set[int] = set()
        self.removed: set[int] = set()

    async def start(self) -> "FakeCluster":
        for n in self.nodes:
            await n.start()
        return self

    async def stop(self) -> None:
        for n in self.nodes:
            await n.stop()

    async def __aenter__(self) -> "FakeCluster":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def members(self) -> list[dict]:
        return [{"id": n.node_id, "name": f"node-{n.port}", "address": n.endpoint,
                 "voter": n.node_id not in self.learners, "leader": n.node_id == self.leader_id}
                for n in self.nodes if n.node_id not in self.removed]

    def admin(self, node: FakeNode, m: str, path: str, body: dict):
        store = self.store
        parts = path.strip("/").split("/")
        if path == "/v1/status" and m == "GET":
            return 200, {"id": node.node_id, "name": f"node-{node.port}",
                         "role": "leader" if node.node_id == self.leader_id else "follower",
                         "term": 3, "leader": self.leader_id, "commit_index": 42, "applied_index": 42,
                         "last_log_index": 42, "snapshot_index": 0, "members": self.members(),
                         "version": "0.1.0"}
        if path == "/v1/members":
            if m == "GET":
                return 200, {"members": self.members()}
            if m == "POST":
                new = FakeNode(store, len(self.nodes) + 1, self)
                self.nodes.append(new)
                new.port = int(body["address"].rsplit(":", 1)[1])
                if body.get("learner", True):  # the API's default
                    self.learners.add(new.node_id)
                return 200, {"member": self.members()[-1]}
        if parts[:2] == ["v1", "members"] and len(parts) >= 3:
            ids = {n["id"] for n in self.members()}
            if not parts[2].isdigit() or int(parts[2]) not in ids:
                return error(404, "member_not_found", f"member {parts[2]} not found")
            mid = int(parts[2])
            if m == "DELETE" and len(parts) == 3:
                self.removed.add(mid)
                return 200, {}
            if m == "POST" and parts[3:] == ["promote"]:
                self.learners.discard(mid)
                return 200, {"member": next(x for x in self.members() if x["id"] == mid)}
        if path == "/v1/leader/transfer" and m == "POST":
            if body.get("to") not in {n["id"] for n in self.members()}:
                return error(404, "member_not_found", f"member {body.get('to')} not found")
            self.leader_id = body["to"]
            return 200, {"leader": self.leader_id}
        if parts[:2] == ["v1", "lease"] and not node.behaviour.leases:
            return error(501, "not_implemented", "leases are not implemented yet")
        if path == "/v1/lease" and m == "POST":
            if not isinstance(body.get("ttl"), int) or body["ttl"] < 1:
                return error(400, "bad_request", "ttl must be a positive integer")
            lease = store.next_lease
            store.next_lease += 1
            store.leases[lease] = body["ttl"]
            return 200, {"id": lease, "ttl": body["ttl"]}
        if parts[:2] == ["v1", "lease"] and len(parts) >= 3:
            lease = int(parts[2]) if parts[2].isdigit() else -1
            if lease not in store.leases:
                return error(404, "lease_not_found", f"lease {parts[2]} not found")
            if m == "POST" and parts[3:] == ["keepalive"]:
                return 200, {"id": lease, "ttl": store.leases[lease]}
            if m == "DELETE" and len(parts) == 3:
                del store.leases[lease]
                doomed = [k for k, kv in store.kvs.items() if kv["lease"] == lease]
                if doomed:
                    store.revision += 1
                    for k in doomed:
                        store._delete(k)
                return 200, {"revision": store.revision}
        return error(404, "not_found", f"no route {m} {path}")


class ThreadedCluster:
    """A FakeCluster on its own event loop in a thread, for subprocess tests."""

    def __init__(self, nodes: int = 1) -> None:
        self.loop = asyncio.new_event_loop()
        self.cluster = FakeCluster(nodes)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeCluster:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.cluster.start(), self.loop).result(10)
        return self.cluster

    def __exit__(self, *exc) -> None:
        async def stop():
            await self.cluster.stop()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def call(self, fn, *args):
        """Run fn(*args) on the cluster's loop (to change state safely)."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)
