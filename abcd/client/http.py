"""The client's plain HTTP: one attempt of a call (following redirects), and the HTTP
form of a session request for a node that does not serve `/v1/session`."""
from __future__ import annotations

from urllib.parse import quote

import aiohttp
import orjson
import yarl

from .endpoints import Endpoints, connection_failure
from .errors import Unreachable
from .retries import Attempt

MAX_REDIRECTS = 5


def kv_http(request: dict) -> tuple[str, str, dict, dict | None]:
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


async def http_attempt(
    session: aiohttp.ClientSession,
    endpoints: Endpoints,
    base: str,
    attempt: Attempt,
    method: str,
    path: str,
    query: dict,
    body: dict | None,
    headers: dict,
    hops: int = 0,
) -> tuple[int, dict, float | None]:
    """One HTTP request to `base`: (status, JSON body, Retry-After seconds).  A redirect
    is followed, and its target becomes the preferred endpoint; Unreachable when no
    answer came."""
    data = None
    if body is not None:
        data = orjson.dumps(body)
        headers = {**headers, "Content-Type": "application/json"}
    url = yarl.URL(base + path, encoded=True)
    if query:
        url = url.with_query(query)
    # aiohttp connects and sends in one call: from here the request may have left.
    attempt.sent = True
    try:
        async with session.request(method, url, data=data, headers=headers, allow_redirects=False) as resp:
            status = resp.status
            raw = await resp.read()
            retry_after = resp.headers.get("Retry-After")
            location = resp.headers.get("Location")
    except aiohttp.ClientConnectorError as e:
        raise Unreachable(f"cannot reach {base}: {connection_failure(e)}", maybe_sent=False) from None
    except aiohttp.ConnectionTimeoutError:
        raise Unreachable(f"cannot reach {base}: connect timed out", maybe_sent=False) from None
    except aiohttp.ClientError as e:
        raise Unreachable(f"{base}: {connection_failure(e)}", maybe_sent=True) from None
    if status in (301, 302, 303, 307, 308) and location:
        if hops >= MAX_REDIRECTS:
            raise Unreachable(f"{base}: more than {MAX_REDIRECTS} redirects", maybe_sent=True)
        target = endpoints.adopt(str(yarl.URL(base).join(yarl.URL(location))))
        return await http_attempt(session, endpoints, target, attempt, method, path, query, body, headers, hops + 1)
    return status, json_body(raw, status), _seconds(retry_after)


def json_body(raw: bytes, status: int) -> dict:
    """An answer's JSON body, or an error body that quotes what came instead."""
    try:
        parsed = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {"error": raw.decode("utf-8", "replace")[:300] or f"HTTP status {status}", "code": f"http_{status}"}
    return parsed


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None
