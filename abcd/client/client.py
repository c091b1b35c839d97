"""The client facade: `Client`, whose calls the package docstring describes.

Each call is made of the package's parts: a key-value call goes over the endpoint's
session (`channel.py`) or its plain-HTTP form (`http.py`), inside the retry loop
(`retries.py`) that fails over between `endpoints.py`'s endpoints and renews the
user's token (`tokens.py`); errors are `errors.py`'s.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial

import aiohttp
import orjson
import yarl

from .channel import NOT_SERVED, Channels
from .endpoints import DEFAULT_ENDPOINTS, Endpoints, connection_failure, parse_endpoint, tls_context
from .errors import ClientError, NotFound, NotSupported, Unavailable, Unreachable, error_for
from .http import http_attempt, json_body, kv_http
from .retries import Attempt, retrying
from .tokens import Tokens
from .users import UserAdmin

# The cluster remembers the outcomes of a client's last 128 applied writes (abcd.kv
# sessions); a retry older than that could not be deduplicated.
WRITE_WINDOW = 128
# A dead or black-holed endpoint must not eat the whole call timeout: give up on
# connecting after this long and try the next one.
CONNECT_TIMEOUT = 1.0
MAX_FRAME_BYTES = 256 * 1024 * 1024  # of a watch frame


class Client(UserAdmin):
    """An abcd client (docs/client.md).  Use as `async with Client(...) as c:`."""

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
        self._tokens = Tokens((user, password) if user is not None else None, self._authenticate_at)
        if isinstance(endpoints, str):
            endpoints = endpoints.split(",")
        # TLS (docs/security.md): an SSLContext, or the files to build one from.
        self._ssl = ssl if ssl is not None else tls_context(cacert=cacert, cert=cert, key=key)
        scheme = "https" if self._ssl is not None else "http"
        self._endpoints = Endpoints([parse_endpoint(e, scheme) for e in endpoints])
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        if client_id is not None and (not client_id or ":" in client_id):
            raise ValueError(f"client_id must be a non-empty string without ':', got {client_id!r}")
        # Unique per client process: the cluster's dedup table cannot tell a restarted
        # client that reuses an id from a retry.
        self.client_id = client_id or secrets.token_hex(8)
        self._seq = 0
        self._http: aiohttp.ClientSession | None = None
        self._channels = Channels(self._session)
        self._write_slots = asyncio.Semaphore(WRITE_WINDOW)

    @property
    def endpoints(self) -> list[str]:
        return list(self._endpoints.bases)

    async def __aenter__(self) -> "Client":
        self._session()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channels.close()
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
        from ..storage.backup import BackupError, check, parse_header

        failures = []
        for base in self._endpoints.in_turn():
            part = f"{path}.part"
            try:
                # Only root may take a backup when auth is on: authenticate first.
                if self._tokens.credentials is not None and self._tokens.token is None:
                    await self._tokens.renew(base, None)
                headers = self._tokens.headers()
                async with self._session().get(base + "/v1/snapshot", allow_redirects=False, headers=headers) as resp:
                    if resp.status != 200:
                        error = error_for(resp.status, json_body(await resp.read(), resp.status))
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
                failures.append(f"{base}: {connection_failure(e)}")
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

            async def connect(base: str, attempt: Attempt, query=query):
                url = yarl.URL(base.replace("http", "ws", 1) + "/v1/watch").with_query(query)
                attempt.sent = True  # the handshake is the request
                try:
                    ws = await self._session().ws_connect(url, max_msg_size=MAX_FRAME_BYTES, headers=self._tokens.headers())
                    return 200, ws, None
                except aiohttp.WSServerHandshakeError as e:
                    if e.status in NOT_SERVED:
                        raise NotSupported(e.status, "not_supported", f"{base} does not support watch yet") from None
                    return e.status, {"error": e.message}, None
                except aiohttp.ClientError as e:
                    raise Unreachable(f"cannot reach {base}: {connection_failure(e)}", maybe_sent=False) from None

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
            self._endpoints.rotate(None)

    # ------------------------------------------------------------------ machinery

    async def _retrying(self, attempt: Callable[[str, Attempt], Awaitable], *, write: bool, what: str):
        return await retrying(
            attempt, write=write, what=what, timeout=self.timeout, endpoints=self._endpoints, tokens=self._tokens
        )

    async def _kv(self, request: dict, *, write: bool) -> dict:
        what = request["op"]
        if not write:
            return await self._retrying(partial(self._kv_attempt, request=request), write=False, what=what)
        async with self._write_slots:
            request["request_id"] = self._next_request_id()
            return await self._retrying(partial(self._kv_attempt, request=request), write=True, what=what)

    async def _kv_attempt(self, base: str, attempt: Attempt, request: dict):
        channel = await self._channels.get(base)  # connecting sends nothing
        if channel is not None:
            attempt.sent = True
            channel.token = self._tokens.token
            status, body = await channel.call(request)
            return status, body, None
        method, path, query, body = kv_http(request)
        return await self._http_attempt(base, attempt, method, path, query, body, request.get("request_id"))

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
        self, base, attempt: Attempt, method, path, query, body, request_id, headers: dict | None = None
    ):
        headers = {**(headers or {}), **self._tokens.headers()}
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        return await http_attempt(self._session(), self._endpoints, base, attempt, method, path, query, body, headers)

    async def _authenticate_at(self, base: str, credentials: dict):
        return await self._http_attempt(base, Attempt(), "POST", "/v1/auth/authenticate", {}, credentials, None)

    async def authenticate(self) -> str:
        """Get a token for the client's user now (calls do it themselves when refused)."""
        await self._tokens.renew(self._endpoints.preferred, self._tokens.token)
        if self._tokens.token is None:
            raise ClientError(400, "auth_not_enabled", "auth is not enabled on this cluster")
        return self._tokens.token


def _write_backup(path: str, part: str, line: bytes, document: bytes, info, check) -> None:
    """Check a received backup, then write it durably under `path` (via `part`)."""
    check(path, info, document)
    with open(part, "wb") as f:
        f.write(line)
        f.write(document)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
