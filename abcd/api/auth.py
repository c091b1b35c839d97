"""The auth API: authenticate, users, roles, permissions, auth enable/disable (docs/api.md).

Who calls (`credential_of`): an `Authorization: Bearer <token>` header; on the
websocket calls (`/v1/session`, `/v1/watch`), which a browser cannot give headers, a
`?token=` query parameter too; else the common name of a verified client certificate,
when the node serves TLS with client certificates (`peer_common_name`).

Every change is a command through the log (kv/auth.py), proposed by the node that got
the call, which hashes a password first (node/auth.py): the log never holds one.  Only
root may change anything once auth is on; `authenticate` and `status` are open.
"""
from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from ..kv import KVError
from ..kv.auth import TO_THE_END, prefix_end
from ..node import responses
from ..node.auth import NO_CREDENTIAL, Credential, Principal, check_password, check_password_text, hash_password
from .jsonio import NODE, BadInput, error_response, json_response, query_bool, query_parameters, read_json, read_object

BEARER = "bearer "
# A wrong user name costs as much as a wrong password, so timing does not tell names.
_DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def peer_common_name(request: web.Request) -> str | None:
    """The common name of the client certificate the TLS layer verified, or None (no
    TLS, no certificate, or no common name).  Only a verified certificate is reported
    by ssl's getpeercert(), so the name can be trusted as the user."""
    transport = request.transport
    if transport is None:
        return None
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return value
    return None


def credential_of(request: web.Request, *, query_token: bool = False) -> Credential:
    header = request.headers.get("Authorization")
    token = None
    if header is not None:
        # A header that is not a bearer token is a bad token (401), not an absent one.
        token = header[len(BEARER):].strip() if header[: len(BEARER)].lower() == BEARER else ""
    elif query_token:
        token = request.query.get("token")
    common_name = peer_common_name(request)
    if token is None and common_name is None:
        return NO_CREDENTIAL
    return Credential(token, common_name)


def principal_of(request: web.Request, *, query_token: bool = False) -> Principal | None:
    """The caller when auth is on (None when off); KVError 401."""
    return request.app[NODE].gate.principal(credential_of(request, query_token=query_token))


def forwarding_headers(principal: Principal | None) -> dict[str, str] | None:
    """The header a call passed on to the leader carries, so that it checks the caller too."""
    return {"Authorization": f"Bearer {principal.token}"} if principal is not None else None


def require_root(request: web.Request, what: str) -> Principal | None:
    """The caller, who must be root when auth is on; KVError 401/403."""
    principal = principal_of(request)
    request.app[NODE].gate.require_root(principal, what)
    return principal


def kv_error(e: KVError) -> web.Response:
    return error_response(e.status, e.code, e.message)


# --------------------------------------------------------------------------- handlers


async def authenticate(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = read_object(await read_json(request), {"name", "password"}, "the authenticate body")
    name, password = body.get("name"), body.get("password")
    if type(name) is not str or not name:
        raise BadInput("name must be a non-empty string")
    try:
        check_password_text(password)
    except KVError as e:
        return kv_error(e)
    auth = node.store.auth
    if not auth.enabled:
        return error_response(400, "auth_not_enabled", "auth is not enabled on this cluster: every call is allowed without a token")
    user = auth.users.get(name)
    stored = user["password_hash"] if user is not None else _DUMMY_HASH
    matches = await asyncio.get_running_loop().run_in_executor(None, check_password, password, stored)
    user = auth.users.get(name)  # the state may have moved while hashing
    if not matches or user is None or user["password_hash"] != stored or not auth.enabled:
        return error_response(401, "unauthenticated", "wrong user name or password")
    return json_response(responses.ok({"token": node.gate.issue(name), "ttl": node.gate.token_ttl}))


async def status(request: web.Request) -> web.Response:
    auth = request.app[NODE].store.auth
    return json_response(responses.ok({"enabled": auth.enabled, "revision": auth.revision}))


async def _propose(request: web.Request, op: dict, what: str, *, password: object = None) -> web.Response:
    """Check the caller is root (when auth is on), hash a password if any, propose."""
    node = request.app[NODE]
    try:
        credential = credential_of(request)
        node.gate.require_root(node.gate.principal(credential), what)
        if password is not None or op["op"] in ("user_add", "user_passwd"):
            text = check_password_text(password)
            op["password_hash"] = await asyncio.get_running_loop().run_in_executor(None, hash_password, text)
    except KVError as e:
        return kv_error(e)
    return json_response(await node.submit(op, credential=credential, admin=True))


async def enable(request: web.Request) -> web.Response:
    return await _propose(request, {"op": "auth_enable", "secret": secrets.token_hex(32)}, "enable auth")


async def disable(request: web.Request) -> web.Response:
    return await _propose(request, {"op": "auth_disable"}, "disable auth")


async def user_add(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"name", "password"}, "the user body")
    return await _propose(request, {"op": "user_add", "name": body.get("name")}, "add users", password=body.get("password"))


async def user_delete(request: web.Request) -> web.Response:
    return await _propose(request, {"op": "user_delete", "name": request.match_info["name"]}, "delete users")


async def user_passwd(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"password"}, "the password body")
    op = {"op": "user_passwd", "name": request.match_info["name"]}
    return await _propose(request, op, "change passwords", password=body.get("password"))


async def user_grant_role(request: web.Request) -> web.Response:
    op = {"op": "user_grant_role", "name": request.match_info["name"], "role": request.match_info["role"]}
    return await _propose(request, op, "grant roles")


async def user_revoke_role(request: web.Request) -> web.Response:
    op = {"op": "user_revoke_role", "name": request.match_info["name"], "role": request.match_info["role"]}
    return await _propose(request, op, "revoke roles")


async def role_add(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"name"}, "the role body")
    return await _propose(request, {"op": "role_add", "name": body.get("name")}, "add roles")


async def role_delete(request: web.Request) -> web.Response:
    return await _propose(request, {"op": "role_delete", "name": request.match_info["name"]}, "delete roles")


def _range_end(key: object, range_end: object, prefix: bool) -> object:
    if prefix:
        if range_end not in (None, ""):
            raise BadInput("give prefix or range_end, not both")
        if type(key) is not str:
            raise BadInput("key must be a string")
        return TO_THE_END if key == "" else prefix_end(key)
    return range_end


async def role_grant_permission(request: web.Request) -> web.Response:
    body = read_object(await read_json(request), {"key", "range_end", "prefix", "perm"}, "the permission body")
    prefix = body.get("prefix")
    if prefix is not None and type(prefix) is not bool:
        raise BadInput("prefix must be true or false")
    op = {
        "op": "role_grant_permission", "name": request.match_info["name"], "key": body.get("key"),
        "range_end": _range_end(body.get("key"), body.get("range_end"), bool(prefix)), "perm": body.get("perm"),
    }
    return await _propose(request, op, "grant permissions")


@query_parameters("key", "range_end", "prefix")
async def role_revoke_permission(request: web.Request) -> web.Response:
    key = request.query.get("key")
    if key is None:
        raise BadInput("revoking a permission needs ?key=K (and range_end=E or prefix=true for a range)")
    op = {
        "op": "role_revoke_permission", "name": request.match_info["name"], "key": key,
        "range_end": _range_end(key, request.query.get("range_end"), bool(query_bool(request, "prefix"))),
    }
    return await _propose(request, op, "revoke permissions")


async def user_list(request: web.Request) -> web.Response:
    try:
        require_root(request, "list users")
    except KVError as e:
        return kv_error(e)
    return json_response(responses.ok({"users": request.app[NODE].store.auth.describe_users()}))


async def role_list(request: web.Request) -> web.Response:
    try:
        require_root(request, "list roles")
    except KVError as e:
        return kv_error(e)
    return json_response(responses.ok({"roles": request.app[NODE].store.auth.describe_roles()}))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/auth/authenticate", authenticate)
    r.add_get("/v1/auth/status", status)
    r.add_post("/v1/auth/enable", enable)
    r.add_post("/v1/auth/disable", disable)
    r.add_get("/v1/auth/users", user_list)
    r.add_post("/v1/auth/users", user_add)
    r.add_delete("/v1/auth/users/{name}", user_delete)
    r.add_put("/v1/auth/users/{name}/password", user_passwd)
    r.add_put("/v1/auth/users/{name}/roles/{role}", user_grant_role)
    r.add_delete("/v1/auth/users/{name}/roles/{role}", user_revoke_role)
    r.add_get("/v1/auth/roles", role_list)
    r.add_post("/v1/auth/roles", role_add)
    r.add_delete("/v1/auth/roles/{name}", role_delete)
    r.add_post("/v1/auth/roles/{name}/permissions", role_grant_permission)
    r.add_delete("/v1/auth/roles/{name}/permissions", role_revoke_permission)
