"""Async Python client for an abcd cluster.

    async with Client(["127.0.0.1:8080", "127.0.0.1:8081"]) as c:
        await c.put("greeting", "hello")
        body = await c.get("greeting")          # {"kv": {...}, "revision": 7}, or None if absent

Theory of operation
-------------------
- **One pipelined channel.** Key-value operations (put, get, delete, range, txn) travel
  over one `/v1/session` websocket per endpoint.  Requests issued in the same
  event-loop turn are written together as one frame (the server turns a frame into one
  proposal batch), and responses come back in any order, matched to their futures by
  the frame-local `id`.  An endpoint that does not serve `/v1/session` (404, 405, 501 on
  the upgrade) is used over plain HTTP instead.  Everything else (status, members,
  leases, leader transfer, watch) uses HTTP or its own websocket.
- **Exactly-once writes.** Each write carries `request_id = "<client_id>:<seq>"`; a
  retry reuses it, so the cluster applies it at most once (thesis §6.3).  The cluster
  remembers the answers to a client's last 128 writes, so at most that many writes are
  in flight at once (`WRITE_WINDOW`).
- **Retries and failover.** A connection failure, a `503` (no leader, no quorum) or a
  `504` (not committed in time) moves the client to the next endpoint and retries the
  same request, with exponential backoff, until `timeout` seconds have passed since the
  call began.  Then it raises `Unavailable` (or `Timeout` when the last attempt got no
  answer), saying whether a write's outcome is unknown: it is known (not applied) only
  when no attempt could have reached a node, or every node refused it with `503`.
  A node's `Retry-After` is honoured once every endpoint has been tried (`Backoff`).
  A `307`/`308` redirect is followed and its target becomes the preferred endpoint.
- **Users.** With `user` and `password`, the client gets a token from
  `POST /v1/auth/authenticate` when a call is first refused with 401 (so a cluster
  without auth costs nothing), and sends it with every call: as `Authorization: Bearer`
  on HTTP and watches, as each request's `"auth"` on the session.  When a call is refused
  with 401 later (the token expired, or the password changed), it authenticates again
  and retries, at most `MAX_RENEWALS` authentications a call.
- **TLS.** `cacert`/`cert`/`key` (or an `ssl.SSLContext` as `ssl`) make bare endpoints
  https and the websockets wss (docs/security.md).

Every call returns the API's JSON body (docs/api.md) as a dict.
"""
from __future__ import annotations

import asyncio
import os
import random
import secrets
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
import yarl

from .client_auth import UserAdmin

__all__ = [
    "Client",
    "ClientError",
    "BadRequest",
    "NotFound",
    "NotSupported",
    "Unavailable",
    "Timeout",
    "DEFAULT_ENDPOINTS",
    "parse_endpoint",
]

DEFAULT_ENDPOINTS = ("127.0.0.1:8080",)
# The cluster remembers the outcomes of a client's last 128 applied writes (abcd.kv
# sessions); a retry older than that could not be deduplicated.
WRITE_WINDOW = 128
BACKOFF_INITIAL = 0.025
BACKOFF_MAX = 1.0
# A dead or black-holed endpoint must not eat the whole call timeout: give up on
# connecting after this long and try the next one.
CONNECT_TIMEOUT = 1.0
MAX_REDIRECTS = 5
MAX_RENEWALS = 5  # authentications per call before a 401 is final
MAX_FRAME_BYTES = 256 * 1024 * 1024
_SESSION_UNSUPPORTED = frozenset((404, 405, 501))


# --------------------------------------------------------------------------- errors


class ClientError(Exception):
    """The cluster answered with an error.  `status` is the HTTP status (0 when no node
    answered at all), `code` the machine code of the error body, `message` the text for
    a person and `body` the whole error body."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body if body is not None else {"error": message, "code": code}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"


class BadRequest(ClientError):
    """400 or 413: the request itself is wrong (bad key, value too large, bad txn…)."""


class NotFound(ClientError):
    """404: the key, lease or member does not exist."""


class NotSupported(ClientError):
    """The node does not offer this call yet (501, or no such websocket endpoint)."""


class Unavailable(ClientError):
    """No node could serve the call before the timeout.

    `outcome_unknown` is True when the call was a write that may or may not have been
    applied (some attempt may have reached a node); False when it certainly was not,
    or when the call was a read.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome_unknown: bool,
        status: int = 503,
        code: str = "unavailable",
        body: dict | None = None,
    ) -> None:
        super().__init__(status, code, message, body)
        self.outcome_unknown = outcome_unknown


class Timeout(Unavailable):
    """The call got no answer in time.  For a write the outcome is unknown by default."""

    def __init__(
        self, message: str, *, outcome_unknown: bool = True, status: int = 504, code: str = "timeout",
        body: dict | None = None,
    ) -> None:
        super().__init__(message, outcome_unknown=outcome_unknown, status=status, code=code, body=body)


def error_for(status: int, body: dict) -> ClientError:
    """The exception for an error answer (status >= 300) with its JSON body."""
    message = str(body.get("error") or f"HTTP status {status}")
    code = str(body.get("code") or f"http_{status}")
    if status in (400, 413):
        return BadRequest(status, code, message, body)
    if status == 404:
        return NotFound(status, code, message, body)
    if status == 503:
        return Unavailable(message, outcome_unknown=False, code=code, body=body)
    if status == 504:
        return Timeout(message, code=code, body=body)
    if status == 501:
        return NotSupported(status, code, message, body)
    return ClientError(status, code, message, body)


class _Attempt:
    """One attempt of a call: `sent` turns True just before its request may leave, so a
    deadline that passes earlier (while connecting) is known to have sent nothing."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


class _Unreachable(Exception):
    """An attempt failed without an answer; `maybe_sent`: the request may have arrived."""

    def __init__(self, reason: str, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


# --------------------------------------------------------------------------- endpoints


def parse_endpoint(endpoint: str, default_scheme: str = "http") -> str:
    """'H:P', 'http://H:P' or 'https://H:P' -> the base URL; ValueError if malformed.

    A bare 'H:P' gets `default_scheme` (https when the client has TLS settings)."""
    text = endpoint.strip()
    if "://" not in text:
        text = f"{default_scheme}://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError(f"endpoint {endpoint!r} is not HOST:PORT (or http[s]://HOST:PORT)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


# --------------------------------------------------------------------------- the session channel


class _Channel:
    """One `/v1/session` websocket: requests in frames, responses matched by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, base: str) -> None:
        self.ws = ws
        self.base = base
        self.token: str | None = None  # sent with each request (the client renews it)
        self.closed_reason: str | None = None
        self._next_id = 1
        self._waiting: dict[int, asyncio.Future] = {}
        # Requests not yet written; everything in _waiting but not here may have been sent.
        self._unsent: list[dict] = []
        self._wakeup = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())
        self._reader = asyncio.create_task(self._read_loop())

    async def call(self, request: dict) -> tuple[int, dict]:
        if self.closed_reason is not None:
            raise _Unreachable(self.closed_reason, maybe_sent=False)
        rid = self._next_id
        self._next_id += 1
        item = dict(request, id=rid)
        if self.token is not None:
            item["auth"] = self.token
        future = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        self._unsent.append(item)
        # The writer wakes up on the next loop turn and takes every request queued by
        # then: one frame per turn.
        self._wakeup.set()
        try:
            return await future
        finally:
            self._waiting.pop(rid, None)
            if not future.done() and item in self._unsent:
                # Cancelled (timed out) before it was written: do not send it after all.
                self._unsent.remove(item)

    async def _write_loop(self) -> None:
        while self.closed_reason is None:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._unsent:
                continue
            batch, self._unsent = self._unsent, []
            try:
                await self._send(orjson.dumps(batch))
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as e:
                self._close(f"sending to {self.base} failed: {e or type(e).__name__}")
                return

    async def _send(self, data: bytes) -> None:
        # send_frame (aiohttp >= 3.11) writes orjson's bytes as a text frame without a
        # decode/encode round trip.
        send_frame = getattr(self.ws, "send_frame", None)
        if send_frame is not None:
            await send_frame(data, aiohttp.WSMsgType.TEXT)
        else:
            await self.ws.send_str(data.decode())

    async def _read_loop(self) -> None:
        reason = f"{self.base} closed the session"
        try:
            async for msg in self.ws:
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                try:
                    responses = orjson.loads(msg.data)
                    for r in responses:
                        future = self._waiting.get(r["id"])
                        if future is not None and not future.done():
                            body = r.get("body")
                            future.set_result((int(r["status"]), body if isinstance(body, dict) else {}))
                except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as e:
                    reason = f"{self.base} sent a malformed session frame ({e})"
                    break
            else:
                if self.ws.close_code is not None:
                    reason = f"{self.base} closed the session (code {self.ws.close_code})"
        except (aiohttp.ClientError, ConnectionError) as e:
            reason = f"session with {self.base} broke: {e or type(e).__name__}"
        self._close(reason)
        await self.ws.close()

    def _close(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        unsent = {item["id"] for item in self._unsent}
        self._unsent = []
        for rid, future in list(self._waiting.items()):
            if not future.done():
                future.set_exception(_Unreachable(reason, maybe_sent=rid not in unsent))
        self._wakeup.set()  # let the writer see the close and end

    async def aclose(self) -> None:
        self._close("the client closed the session")
        for task in (self._writer, self._reader):
            task.cancel()
        await asyncio.gather(self._writer, self._reader, return_exceptions=True)
        await self.ws.close()


# --------------------------------------------------------------------------- the client


def _kv_http(request: dict) -> tuple[str, str, dict, dict | None]:
    """The plain-HTTP form (method, path, query, body) of a session request."""
    op = request["op"]
    if op == "range":
        query = {"prefix": request["prefix"]}
        if request.get("limit"):
            query["limit"] = str(request["limit"])
        if request.get("revision"):
            query["revision"] = str(request["revision"])
        if request.get("serializable"):
            query["serializable"] = "true"
        return "GET", "/v1/kv", query, None
    if op == "txn":
        return "POST", "/v1/txn", {}, {k: request[k] for k in ("compare", "success", "failure")}
    if op == "compact":
        return "POST", "/v1/compact", {}, {"revision": request["revision"]}
    path = "/v1/kv/" + quote(request["key"], safe="")
    if op == "put":
        body = {"value": request["value"]}
        if request.get("lease"):
            body["lease"] = request["lease"]
        return "PUT", path, {}, body
    if op == "get":
        query = {}
        if request.get("serializable"):
            query["serializable"] = "true"
        if request.get("revision"):
            query["revision"] = str(request["revision"])
        return "GET", path, query, None
    if op == "delete":
        return "DELETE", path, ({"prefix": "true"} if request.get("prefix") else {}), None
    raise ValueError(f"unknown session op {op!r}")


class Client(UserAdmin):
    """An abcd client; see the module docstring.  Use as `async with Client(...) as c:`."""

    def __init__(
        self,
        endpoints: Iterable[str] = DEFAULT_ENDPOINTS,
        *,
        timeout: float = 5.0,
        client_id: str | None = None,
        user: str | None = None,
        password: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        self._credentials = (user, password) if user is not None else None
        self._token: str | None = None
        self._token_lock = asyncio.Lock()
        if isinstance(endpoints, str):
            endpoints = endpoints.split(",")
        # TLS (docs/security.md): an SSLContext, or the files to build one from.
        self._ssl = ssl if ssl is not None else tls_context(cacert=cacert, cert=cert, key=key)
        self._endpoints = [parse_endpoint(e, "https" if self._ssl is not None else "http") for e in endpoints]
        if not self._endpoints:
            raise ValueError("at least one endpoint is needed")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        if client_id is not None and (not client_id or ":" in client_id):
            raise ValueError(f"client_id must be a non-empty string without ':', got {client_id!r}")
        # Unique per client process: the cluster's dedup table cannot tell a restarted
        # client that reuses an id from a retry.
        self.client_id = client_id or secrets.token_hex(8)
        self._seq = 0
        self._current = 0  # index of the preferred endpoint
        self._http: aiohttp.ClientSession | None = None
        self._channels: dict[str, _Channel] = {}
        self._connecting: dict[str, asyncio.Task] = {}
        self._no_session: set[str] = set()
        self._write_slots = asyncio.Semaphore(WRITE_WINDOW)

    @property
    def endpoints(self) -> list[str]:
        return list(self._endpoints)

    async def __aenter__(self) -> "Client":
        self._session()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        for task in self._connecting.values():
            task.cancel()
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(ch.aclose() for ch in channels), return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(CONNECT_TIMEOUT, self.timeout)),
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True),
            )
        return self._http

    def _next_request_id(self) -> str:
        self._seq += 1
        return f"{self.client_id}:{self._seq}"

    # ------------------------------------------------------------------ key-value

    async def put(self, key: str, value: str, lease: int | None = None) -> dict:
        """Set `key` to `value` (attached to `lease` if given): `{"revision", "prev_kv"}`."""
        request = {"op": "put", "key": key, "value": value}
        if lease:
            request["lease"] = lease
        return await self._kv(request, write=True)

    async def get(self, key: str, serializable: bool = False, revision: int | None = None) -> dict | None:
        """`{"kv": KV, "revision"}` for `key`, or None if it does not exist.

        Linearizable unless `serializable` (then the contacted node's local state);
        `revision` reads the key as it was at that revision.
        """
        request = {"op": "get", "key": key}
        if serializable:
            request["serializable"] = True
        if revision:
            request["revision"] = revision
        try:
            return await self._kv(request, write=False)
        except NotFound as e:
            if e.code.startswith("http_"):  # not the API's answer: the route is missing
                raise
            return None

    async def delete(self, key: str, prefix: bool = False) -> dict:
        """Delete `key` (every key starting with it if `prefix`): `{"deleted", "revision"}`."""
        request = {"op": "delete", "key": key}
        if prefix:
            request["prefix"] = True
        return await self._kv(request, write=True)

    async def range(
        self, prefix: str, limit: int | None = None, *, revision: int | None = None, serializable: bool = False
    ) -> dict:
        """Keys starting with `prefix` in key order: `{"kvs": [KV…], "more", "revision"}`."""
        request = {"op": "range", "prefix": prefix}
        if limit:
            request["limit"] = limit
        if revision:
            request["revision"] = revision
        if serializable:
            request["serializable"] = True
        return await self._kv(request, write=False)

    async def txn(self, compare: list, success: list, failure: list) -> dict:
        """A transaction as `POST /v1/txn`: `{"succeeded", "responses", "revision"}`.

        A failed compare is not an error: `succeeded` is False and `failure` ran.
        """
        request = {"op": "txn", "compare": list(compare), "success": list(success), "failure": list(failure)}
        return await self._kv(request, write=True)

    async def cas(self, key: str, expected: str, new: str) -> dict:
        """Compare-and-swap: put `new` if the value of `key` is `expected` (txn body)."""
        return await self.txn(
            [{"key": key, "target": "value", "op": "==", "value": expected}],
            [{"put": {"key": key, "value": new}}],
            [],
        )

    async def compact(self, revision: int) -> dict:
        """Forget the history below `revision` on every member: reads and watches at
        older revisions then answer `compacted`.  `{"compact_revision", "revision"}`;
        BadRequest `compacted` when the history is already compacted at or past it,
        `future_revision` when it is beyond the store's revision."""
        return await self._kv({"op": "compact", "revision": int(revision)}, write=True)

    # ------------------------------------------------------------------ backup

    async def save_snapshot(self, path: str) -> dict:
        """Save a backup of one member's store to `path` (`GET /v1/snapshot`: the state
        at one applied index; storage/backup.py has the file's format).

        The file is written to `path.part`, checked against its header's length and
        SHA-256 and the response's `X-Abcd-Checksum`, fsynced, then renamed to `path`.
        Returns the header (`revision`, `index`, `keys`, `bytes`, `sha256`) and the
        `endpoint` it came from.  Endpoints are tried in turn; Unavailable if none
        answers, ClientError for an error answer, BackupError for a damaged transfer."""
        from .storage.backup import BackupError, check, parse_header

        failures = []
        count = len(self._endpoints)
        for i in range(count):
            base = self._endpoints[(self._current + i) % count]
            part = f"{path}.part"
            try:
                # Only root may take a backup when auth is on: authenticate first.
                if self._credentials is not None and self._token is None:
                    await self._renew_token(base, None)
                headers = self._auth_headers()
                async with self._session().get(base + "/v1/snapshot", allow_redirects=False, headers=headers) as resp:
                    if resp.status != 200:
                        raw = await resp.read()
                        try:
                            body = orjson.loads(raw)
                        except orjson.JSONDecodeError:
                            body = {"error": raw.decode("utf-8", "replace")[:300]}
                        error = error_for(resp.status, body if isinstance(body, dict) else {})
                        if isinstance(error, Unavailable):
                            failures.append(f"{base}: {error.message}")
                            continue
                        raise error
                    line = await resp.content.readline()
                    info = parse_header(line.rstrip(b"\n"))
                    if resp.headers.get("X-Abcd-Checksum") != f"sha256={info.sha256}":
                        raise BackupError(f"{base} sent a backup whose header does not match its X-Abcd-Checksum")
                    document = bytearray()
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        document += chunk
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                failures.append(f"{base}: {_reason(e)}")
                continue
            await asyncio.to_thread(_write_backup, path, part, line, bytes(document), info, check)
            return {**info.as_dict(), "endpoint": base}
        raise Unavailable(f"no member sent a snapshot ({'; '.join(failures)})", outcome_unknown=False)

    # ------------------------------------------------------------------ cluster

    async def status(self) -> dict:
        return await self._http_call("GET", "/v1/status", write=False)

    async def members(self) -> dict:
        return await self._http_call("GET", "/v1/members", write=False)

    async def member_add(self, address: str, learner: bool = True, cluster_token: str | None = None) -> dict:
        """Add the node at `address`: as a learner (the default, as the API's), which the
        leader promotes to voter once its log has caught up, or as a voter at once.
        A cluster started with --cluster-token needs `cluster_token`."""
        body = {"address": address, "learner": bool(learner)}
        headers = {"X-Abcd-Cluster-Token": cluster_token} if cluster_token is not None else None
        return await self._http_call("POST", "/v1/members", body=body, write=True, headers=headers)

    async def member_remove(self, id: int) -> dict:
        return await self._http_call("DELETE", f"/v1/members/{int(id)}", write=True)

    async def member_promote(self, id: int) -> dict:
        return await self._http_call("POST", f"/v1/members/{int(id)}/promote", write=True)

    async def leader_transfer(self, to: int) -> dict:
        return await self._http_call("POST", "/v1/leader/transfer", body={"to": int(to)}, write=True)

    async def lease_grant(self, ttl: int) -> dict:
        """A new lease of `ttl` seconds: `{"id", "ttl"}`."""
        return await self._http_call("POST", "/v1/lease", body={"ttl": int(ttl)}, write=True)

    async def lease_keepalive(self, id: int) -> dict:
        return await self._http_call("POST", f"/v1/lease/{int(id)}/keepalive", write=False)

    async def lease_revoke(self, id: int) -> dict:
        return await self._http_call("DELETE", f"/v1/lease/{int(id)}", write=True)

    async def watch(
        self, key: str, prefix: bool = False, start_revision: int | None = None
    ) -> AsyncIterator[dict]:
        """Yield the watch frames `{"events": [...], "revision"}` for `key` (or prefix).

        A broken stream is resumed on the next endpoint after the last revision seen;
        NotSupported if the node has no watch endpoint, Unavailable if no endpoint
        takes the watch within `timeout`.
        """
        next_revision = start_revision
        while True:
            query = {"prefix" if prefix else "key": key}
            if next_revision:
                query["start_revision"] = str(next_revision)

            async def connect(base: str, attempt: _Attempt, query=query):
                url = yarl.URL(base.replace("http", "ws", 1) + "/v1/watch").with_query(query)
                attempt.sent = True  # the handshake is the request
                try:
                    ws = await self._session().ws_connect(url, max_msg_size=MAX_FRAME_BYTES, headers=self._auth_headers())
                    return 200, ws, None
                except aiohttp.WSServerHandshakeError as e:
                    if e.status in _SESSION_UNSUPPORTED:
                        raise NotSupported(e.status, "not_supported", f"{base} does not support watch yet") from None
                    return e.status, {"error": e.message}, None
                except aiohttp.ClientError as e:
                    raise _Unreachable(f"cannot reach {base}: {_reason(e)}", maybe_sent=False) from None

            ws = await self._retrying(connect, write=False, what="watch")
            try:
                while True:
                    try:
                        msg = await ws.receive()
                    except (aiohttp.ClientError, ConnectionError):
                        break
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        frame = orjson.loads(msg.data)
                        if isinstance(frame, dict) and isinstance(frame.get("revision"), int):
                            next_revision = frame["revision"] + 1
                        yield frame
                        continue
                    if msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1000:
                        return  # the node ended the watch on purpose
                    if msg.type == aiohttp.WSMsgType.CLOSE and msg.data != 1001:
                        raise ClientError(0, "watch_closed", f"the node closed the watch: {msg.extra or msg.data}")
                    break  # going away, or the connection broke: resume elsewhere
            finally:
                await ws.close()
            self._rotate(None)

    # ------------------------------------------------------------------ machinery

    async def _kv(self, request: dict, *, write: bool) -> dict:
        what = request["op"]
        if not write:
            return await self._retrying(partial(self._kv_attempt, request=request), write=False, what=what)
        async with self._write_slots:
            request["request_id"] = self._next_request_id()
            return await self._retrying(partial(self._kv_attempt, request=request), write=True, what=what)

    async def _kv_attempt(self, base: str, attempt: _Attempt, request: dict):
        if base not in self._no_session:
            channel = await self._channel(base)  # connecting sends nothing
            if channel is not None:
                attempt.sent = True
                channel.token = self._token
                status, body = await channel.call(request)
                return status, body, None
        method, path, query, body = _kv_http(request)
        return await self._http_attempt(base, attempt, method, path, query, body, request.get("request_id"))

    async def _channel(self, base: str) -> _Channel | None:
        channel = self._channels.get(base)
        if channel is not None and channel.closed_reason is None:
            return channel
        task = self._connecting.get(base)
        if task is None:
            task = asyncio.create_task(self._open_channel(base))
            self._connecting[base] = task
            task.add_done_callback(lambda t: self._connect_done(base, t))
        # Shielded: a caller that times out must not cancel the connect others await.
        return await asyncio.shield(task)

    def _connect_done(self, base: str, task: asyncio.Task) -> None:
        if self._connecting.get(base) is task:
            del self._connecting[base]
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not reported

    async def _open_channel(self, base: str) -> _Channel | None:
        url = base.replace("http", "ws", 1) + "/v1/session"
        try:
            ws = await self._session().ws_connect(url, max_msg_size=MAX_FRAME_BYTES, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            if e.status in _SESSION_UNSUPPORTED:
                self._no_session.add(base)  # an older node: plain HTTP from now on
                return None
            raise _Unreachable(f"{base} refused the session ({e.status} {e.message})", maybe_sent=False) from None
        except aiohttp.ClientError as e:
            raise _Unreachable(f"cannot reach {base}: {_reason(e)}", maybe_sent=False) from None
        old = self._channels.pop(base, None)
        if old is not None:
            await old.aclose()
        channel = _Channel(ws, base)
        self._channels[base] = channel
        return channel

    async def _http_call(
        self, method: str, path: str, *, body: dict | None = None, write: bool, headers: dict | None = None
    ) -> dict:
        request_id = self._next_request_id() if write else None
        return await self._retrying(
            lambda base, attempt: self._http_attempt(
                base, attempt, method, path, {}, body, request_id, headers=headers
            ),
            write=write,
            what=f"{method} {path}",
        )

    async def _http_attempt(
        self, base, attempt: _Attempt, method, path, query, body, request_id, hops: int = 0, headers: dict | None = None
    ):
        extra, headers = headers, dict(headers or {})
        headers.update(self._auth_headers())
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        url = yarl.URL(base + path, encoded=True)
        if query:
            url = url.with_query(query)
        # aiohttp connects and sends in one call: from here the request may have left.
        attempt.sent = True
        try:
            async with self._session().request(
                method, url, data=data, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                raw = await resp.read()
                retry_after = resp.headers.get("Retry-After")
                location = resp.headers.get("Location")
        except aiohttp.ClientConnectorError as e:
            raise _Unreachable(f"cannot reach {base}: {_reason(e)}", maybe_sent=False) from None
        except aiohttp.ConnectionTimeoutError:
            raise _Unreachable(f"cannot reach {base}: connect timed out", maybe_sent=False) from None
        except aiohttp.ClientError as e:
            raise _Unreachable(f"{base}: {_reason(e)}", maybe_sent=True) from None
        if status in (301, 302, 303, 307, 308) and location:
            if hops >= MAX_REDIRECTS:
                raise _Unreachable(f"{base}: more than {MAX_REDIRECTS} redirects", maybe_sent=True)
            target = self._adopt(str(yarl.URL(base).join(yarl.URL(location))))
            return await self._http_attempt(target, attempt, method, path, query, body, request_id, hops + 1, extra)
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            parsed = {"error": raw.decode("utf-8", "replace")[:300] or f"HTTP status {status}", "code": f"http_{status}"}
        return status, parsed, _seconds(retry_after)

    def _auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self._token}"} if self._token is not None else {}

    async def authenticate(self) -> str:
        """Get a token for the client's user now (calls do it themselves when refused)."""
        await self._renew_token(self._endpoints[self._current], self._token)
        if self._token is None:
            raise ClientError(400, "auth_not_enabled", "auth is not enabled on this cluster")
        return self._token

    async def _renew_token(self, base: str, stale: str | None) -> None:
        """Authenticate at `base` unless another call renewed `stale` meanwhile;
        ClientError 401 for a wrong user or password."""
        if self._credentials is None:
            return
        async with self._token_lock:
            if self._token != stale:
                return
            user, password = self._credentials
            status, body, _ = await self._http_attempt(
                base, _Attempt(), "POST", "/v1/auth/authenticate", {}, {"name": user, "password": password}, None
            )
            if status == 200 and isinstance(body.get("token"), str):
                self._token = body["token"]
            elif body.get("code") == "auth_not_enabled":
                self._token = None
            else:
                raise error_for(status, body)

    def _adopt(self, url: str) -> str:
        """Make a redirect target the preferred endpoint (adding it if new)."""
        base = parse_endpoint(f"{yarl.URL(url).scheme}://{yarl.URL(url).host}:{yarl.URL(url).port}")
        if base not in self._endpoints:
            self._endpoints.append(base)
        self._current = self._endpoints.index(base)
        return base

    def _rotate(self, failed: str | None) -> None:
        # Many calls fail on the same endpoint at once: only the first one moves on.
        if failed is None or self._endpoints[self._current] == failed:
            self._current = (self._current + 1) % len(self._endpoints)

    async def _retrying(self, attempt: Callable[[str, _Attempt], Awaitable], *, write: bool, what: str):
        """Run `attempt(base, progress)` until an answer other than 503/504, failing over
        and backing off.  An attempt sets `progress.sent` before its request may leave: a
        deadline passing before that (while connecting) sent nothing, so a write is then
        known not to be applied, as when every attempt was refused."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        maybe_applied = False  # some attempt of this write may have been applied
        backoff = Backoff()
        attempts = 0
        last = ""
        last_was_timeout = False
        # Authentications left before a 401 is final: one for a token that expired or was
        # voided, a few more while members disagree on whether auth is on (one that has
        # not applied `auth enable` yet answers authenticate with auth_not_enabled).
        renewals = MAX_RENEWALS
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                kind = Timeout if last_was_timeout else Unavailable
                raise kind(
                    f"{what}: cluster unavailable after {attempts} attempt(s) in {self.timeout:g}s "
                    f"(last: {last}){_outcome(write, maybe_applied)}",
                    outcome_unknown=maybe_applied,
                )
            base = self._endpoints[self._current]
            attempts += 1
            this = _Attempt()
            token_used = self._token
            try:
                async with asyncio.timeout(remaining):
                    status, body, retry_after = await attempt(base, this)
            except TimeoutError:
                if not this.sent:  # still connecting: this attempt sent nothing
                    kind = Timeout if last_was_timeout else Unavailable
                    raise kind(
                        f"{what}: cluster unavailable after {attempts} attempt(s) in {self.timeout:g}s "
                        f"(last: {last + '; then ' if last else ''}connecting to {base} took the rest of the time)"
                        f"{_outcome(write, maybe_applied)}",
                        outcome_unknown=maybe_applied,
                    ) from None
                raise Timeout(
                    f"{what}: no answer from {base} within {self.timeout:g}s{_outcome(write, write)}",
                    outcome_unknown=write,
                ) from None
            except _Unreachable as e:
                maybe_applied |= write and e.maybe_sent
                last, last_was_timeout, retry_after = e.reason, False, None
            else:
                if status < 300:
                    return body
                if status == 401 and self._credentials is not None and renewals > 0:
                    # No token yet, or it expired or was voided: authenticate again.
                    renewals -= 1
                    try:
                        async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                            await self._renew_token(base, token_used)
                    except TimeoutError:
                        last = f"authenticating at {base} took the rest of the time"
                        continue  # the deadline has passed: the loop raises
                    except _Unreachable as e:
                        last, renewals = e.reason, renewals + 1
                        self._rotate(base)
                        continue
                    if self._token is None:  # that member has not applied `auth enable` yet
                        last = f"{base} answered 401 but says auth is not enabled"
                        await asyncio.sleep(min(backoff.pause(None, 1), max(deadline - loop.time(), 0)))
                    continue
                if status not in (503, 504):
                    if write and attempts > 1 and body.get("code") == "duplicate_stale":
                        raise Unavailable(
                            f"{what}: {body.get('error')}{_outcome(True, True)}",
                            outcome_unknown=True, status=status, code="duplicate_stale", body=body,
                        )
                    raise error_for(status, body)
                # 503: refused, not applied.  504: proposed but not committed in time.
                maybe_applied |= write and status == 504
                last = f"{base} answered {status}: {body.get('error', '')}"
                last_was_timeout = status == 504
            self._rotate(base)
            pause = backoff.pause(retry_after, len(self._endpoints))
            await asyncio.sleep(max(0.0, min(pause, deadline - loop.time())))


def _write_backup(path: str, part: str, line: bytes, document: bytes, info, check) -> None:
    """Check a received backup, then write it durably under `path` (via `part`)."""
    check(path, info, document)
    with open(part, "wb") as f:
        f.write(line)
        f.write(document)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


class Backoff:
    """Pauses between the attempts of one call: exponential with jitter, from
    BACKOFF_INITIAL up to BACKOFF_MAX.

    A node's Retry-After speaks for that node only (it knows no leader yet); another
    member may well know one.  So it is honoured once a whole round of endpoints has
    failed, not before the next endpoint is tried.
    """

    def __init__(self) -> None:
        self.delay = BACKOFF_INITIAL
        self.failures = 0
        self.retry_after: float | None = None  # the longest asked for in this round

    def pause(self, retry_after: float | None, endpoints: int) -> float:
        self.failures += 1
        if retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, retry_after)
        pause = self.delay * (0.5 + random.random() / 2)
        self.delay = min(self.delay * 2, BACKOFF_MAX)
        if self.failures % max(1, endpoints) == 0 and self.retry_after is not None:
            pause = max(pause, min(self.retry_after, BACKOFF_MAX))
            self.retry_after = None
        return pause


def _outcome(write: bool, maybe_applied: bool) -> str:
    if not write:
        return ""
    if maybe_applied:
        return "; outcome unknown: the write may or may not have been applied"
    return "; the write was not applied"


def tls_context(
    *, cacert: str | None = None, cert: str | None = None, key: str | None = None
) -> ssl_module.SSLContext | None:
    """The SSLContext for these files (None when none is given): trust `cacert` (else the
    system's CAs), present `cert`/`key` when the cluster demands client certificates."""
    if cacert is None and cert is None and key is None:
        return None
    if key is not None and cert is None:
        raise ValueError("a key needs its certificate (--cert)")
    for name, path in (("cacert", cacert), ("cert", cert), ("key", key)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"{name} {path}: no such file")
    context = ssl_module.create_default_context(cafile=cacert)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def _reason(e: Exception) -> str:
    """A short description of a connection error."""
    if isinstance(e, aiohttp.ServerDisconnectedError):
        # What a plaintext client sees from a node that speaks TLS.
        return "the node closed the connection without answering (if it speaks TLS, use https:// and its CA: --cacert)"
    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    return str(e) or type(e).__name__


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None
