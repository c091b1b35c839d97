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

The package, one concern a module: `errors.py` (the exceptions), `channel.py` (the
session websockets, over `abcd.session_protocol`), `http.py` (plain HTTP and the HTTP
form of a session request), `retries.py` (the retry loop), `endpoints.py` (addresses,
the preferred endpoint, TLS), `tokens.py` and `users.py` (auth), `client.py` (`Client`).
"""
from __future__ import annotations

from ..backoff import Backoff
from .client import CONNECT_TIMEOUT, MAX_FRAME_BYTES, WRITE_WINDOW, Client
from .endpoints import DEFAULT_ENDPOINTS, parse_endpoint, tls_context
from .errors import BadRequest, ClientError, NotFound, NotSupported, Timeout, Unavailable, error_for
from .http import MAX_REDIRECTS
from .retries import BACKOFF_INITIAL, BACKOFF_MAX, MAX_RENEWALS

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
