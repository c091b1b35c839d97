"""Auth on one in-process node: who may do what over HTTP, the session, watches, txns
and leases; tokens that expire, are voided, or were tampered with."""
import asyncio
import base64
import json
import shutil
import tempfile
import time

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abcd.client import Client, ClientError
from abcd.kv.auth import prefix_end
from abcd.node.auth import issue_token
from node_harness import LocalNode, run_with_node, wait_until

PASSWORDS = {"root": "root-pw", "alice": "alice-pw", "reader": "reader-pw", "nobody": "nobody-pw"}


class Shared:
    loop = None
    node = None
    data_dir = None
    tokens: dict = {}


def run(coro):
    return Shared.loop.run_until_complete(coro)


async def setup_users(n: LocalNode) -> None:
    """alice: read and write app/, read config; reader: read app/; nobody: no role."""
    calls = [("POST", "/v1/auth/users", {"name": name, "password": pw}) for name, pw in PASSWORDS.items()]
    calls += [
        ("POST", "/v1/auth/roles", {"name": "app"}),
        ("POST", "/v1/auth/roles/app/permissions", {"key": "app/", "prefix": True, "perm": "readwrite"}),
        ("POST", "/v1/auth/roles/app/permissions", {"key": "config", "perm": "read"}),
        ("POST", "/v1/auth/roles", {"name": "ro"}),
        ("POST", "/v1/auth/roles/ro/permissions", {"key": "app/", "range_end": prefix_end("app/"), "perm": "read"}),
        ("PUT", "/v1/auth/users/alice/roles/app", None),
        ("PUT", "/v1/auth/users/reader/roles/ro", None),
    ]
    for method, path, body in calls:
        status, answer = await n.call(method, path, json=body)
        assert status == 200, (path, answer)
    for key in ("app/a", "config", "other"):
        assert (await n.call("PUT", f"/v1/kv/{key}", json={"value": "0"}))[0] == 200
    assert (await n.call("POST", "/v1/auth/enable"))[0] == 200


async def token_for(n: LocalNode, name: str) -> str:
    status, answer = await n.call("POST", "/v1/auth/authenticate", json={"name": name, "password": PASSWORDS[name]})
    assert status == 200, answer
    return answer["token"]


def setup_module(module):
    Shared.loop = asyncio.new_event_loop()
    Shared.data_dir = tempfile.mkdtemp(prefix="abcd-auth-")
    Shared.node = LocalNode(Shared.data_dir)
    run(Shared.node.start())
    run(setup_users(Shared.node))
    Shared.tokens = {name: run(token_for(Shared.node, name)) for name in PASSWORDS}
    Shared.tokens["bad"] = "not-a-token"


def teardown_module(module):
    run(Shared.node.stop())
    Shared.loop.close()
    shutil.rmtree(Shared.data_dir, ignore_errors=True)


def headers(caller: str | None) -> dict:
    return {"Authorization": f"Bearer {Shared.tokens[caller]}"} if caller is not None else {}


# --------------------------------------------------------------------------- the table

TXN_OK = {"compare": [{"key": "app/a", "target": "version", "op": ">", "value": 0}],
          "success": [{"put": {"key": "app/b", "value": "1"}}], "failure": [{"get": {"key": "config"}}]}
# Its compare holds, so the failure branch would never run: still refused, as it may not write there.
TXN_FAILURE_BRANCH_FORBIDDEN = {**TXN_OK, "failure": [{"put": {"key": "other", "value": "1"}}]}
TXN_COMPARE_FORBIDDEN = {**TXN_OK, "compare": [{"key": "other", "target": "version", "op": ">", "value": 0}]}


async def http_call(caller, op, key):
    n = Shared.node
    h = headers(caller)
    if op == "put":
        return await n.call("PUT", f"/v1/kv/{key}", json={"value": "v"}, headers=h)
    if op == "get":
        return await n.call("GET", f"/v1/kv/{key}", headers=h)
    if op == "serializable get":
        return await n.call("GET", f"/v1/kv/{key}?serializable=true", headers=h)
    if op == "delete":
        return await n.call("DELETE", f"/v1/kv/{key}-gone", headers=h)
    if op == "delete prefix":
        return await n.call("DELETE", f"/v1/kv/{key}?prefix=true", headers=h)
    if op == "range":
        return await n.call("GET", f"/v1/kv?prefix={key}", headers=h)
    if op == "txn":
        return await n.call("POST", "/v1/txn", json=key, headers=h)
    if op == "lease grant":
        return await n.call("POST", "/v1/lease", json={"ttl": 60}, headers=h)
    if op == "lease revoke":  # a lease holding `key`, granted and filled by root
        lease = (await n.call("POST", "/v1/lease", json={"ttl": 60}, headers=headers("root")))[1]["id"]
        await n.call("PUT", f"/v1/kv/{key}-leased", json={"value": "v", "lease": lease}, headers=headers("root"))
        return await n.call("DELETE", f"/v1/lease/{lease}", headers=h)
    if op == "members add":
        return await n.call("POST", "/v1/members", json={"address": "127.0.0.1:1"}, headers=h)
    if op == "leader transfer":
        return await n.call("POST", "/v1/leader/transfer", json={"to": n.node.node_id}, headers=h)
    if op == "faults":
        return await n.call("DELETE", "/v1/admin/faults", headers=h)
    if op == "user list":
        return await n.call("GET", "/v1/auth/users", headers=h)
    if op == "role add":
        return await n.call("POST", "/v1/auth/roles", json={"name": f"r-{time.monotonic_ns()}"}, headers=h)
    if op == "compact":
        return await n.call("POST", "/v1/compact", json={"revision": 1}, headers=h)
    if op == "backup":  # a 200 is the backup file, not JSON
        async with n.http.get(n.base + "/v1/snapshot", headers=h) as reply:
            raw = await reply.read()
            return reply.status, (json.loads(raw) if reply.status != 200 else {"bytes": len(raw)})
    raise AssertionError(op)


CASES = [
    # caller, op, key, expected status
    ("alice", "put", "app/k", 200),
    ("alice", "put", "other", 403),
    ("alice", "put", "app", 403),
    ("alice", "put", "config", 403),
    ("alice", "get", "config", 200),
    ("alice", "serializable get", "other", 403),
    ("alice", "get", "other", 403),
    ("alice", "delete", "app/x", 200),
    ("alice", "delete", "other", 403),
    ("alice", "delete prefix", "app/tmp/", 200),
    ("alice", "delete prefix", "app", 403),
    ("alice", "range", "app/", 200),
    ("alice", "range", "", 403),
    ("alice", "txn", TXN_OK, 200),
    ("alice", "txn", TXN_FAILURE_BRANCH_FORBIDDEN, 403),
    ("alice", "txn", TXN_COMPARE_FORBIDDEN, 403),
    ("alice", "lease grant", None, 200),
    ("alice", "lease revoke", "app/l", 200),
    ("alice", "lease revoke", "other", 403),
    ("alice", "members add", None, 403),
    ("alice", "leader transfer", None, 403),
    ("alice", "faults", None, 403),
    ("alice", "user list", None, 403),
    ("alice", "role add", None, 403),
    ("reader", "get", "app/a", 200),
    ("reader", "range", "app/", 200),
    ("reader", "put", "app/k", 403),
    ("reader", "txn", TXN_OK, 403),
    ("reader", "get", "config", 403),
    ("nobody", "get", "app/a", 403),
    ("nobody", "lease grant", None, 200),
    ("root", "put", "other", 200),
    ("root", "range", "", 200),
    ("root", "txn", TXN_FAILURE_BRANCH_FORBIDDEN, 200),
    ("root", "user list", None, 200),
    ("root", "role add", None, 200),
    ("root", "leader transfer", None, 200),
    ("root", "faults", None, 403),  # allowed, but this node has no --enable-faults: "forbidden"
    # A backup holds every key and the auth state; a compaction forgets everyone's history.
    ("alice", "backup", None, 403),
    ("alice", "compact", None, 403),
    (None, "backup", None, 401),
    ("root", "backup", None, 200),
    ("root", "compact", None, 200),
    (None, "get", "app/a", 401),
    (None, "put", "app/a", 401),
    (None, "members add", None, 401),
    (None, "user list", None, 401),
    ("bad", "get", "app/a", 401),
    ("bad", "lease grant", None, 401),
]


@pytest.mark.parametrize("caller, op, key, expected", CASES, ids=lambda v: str(v)[:30])
def test_http(caller, op, key, expected):
    status, answer = run(http_call(caller, op, key))
    assert status == expected, answer
    if status == 401:
        assert answer["code"] == "unauthenticated" and "POST /v1/auth/authenticate" in answer["error"]
    if status == 403 and op != "faults":
        assert answer["code"] == "permission_denied"
        assert repr(caller) in answer["error"], "the error names the user"


def test_errors_name_the_operation_and_the_key():
    status, answer = run(http_call("alice", "txn", TXN_FAILURE_BRANCH_FORBIDDEN))
    assert status == 403
    assert answer["error"] == "user 'alice' may not write key 'other' (put in the txn's failure branch)"


SESSION_CASES = [
    ("alice", {"op": "put", "key": "app/s", "value": "v"}, 200),
    ("alice", {"op": "put", "key": "other", "value": "v"}, 403),
    ("alice", {"op": "get", "key": "config"}, 200),
    ("alice", {"op": "range", "prefix": "app/"}, 200),
    ("alice", {"op": "txn", **TXN_FAILURE_BRANCH_FORBIDDEN}, 403),
    ("alice", {"op": "lease_grant", "ttl": 5}, 200),
    ("alice", {"op": "user_add", "name": "mallory", "password_hash": "scrypt$2$1$1$AA$AA"}, 400),
    ("reader", {"op": "put", "key": "app/s", "value": "v"}, 403),
    ("root", {"op": "put", "key": "other", "value": "v"}, 200),
    (None, {"op": "get", "key": "app/a"}, 401),
    ("bad", {"op": "get", "key": "app/a"}, 401),
]


async def session_exchange(url: str, frame: list, hdrs: dict) -> dict:
    async with Shared.node.http.ws_connect(url, headers=hdrs) as ws:
        await ws.send_str(json.dumps([{**r, "id": i} for i, r in enumerate(frame)]))
        answers = {}
        while len(answers) < len(frame):
            for answer in await ws.receive_json(timeout=10):
                answers[answer["id"]] = answer
        return answers


@pytest.mark.parametrize("caller, request_, expected", SESSION_CASES, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("how", ["header", "query", "item"])
def test_session(caller, request_, expected, how):
    n = Shared.node
    url = n.base.replace("http", "ws") + "/v1/session"
    hdrs, frame = {}, [request_]
    if caller is not None and how == "header":
        hdrs = headers(caller)
    elif caller is not None and how == "query":
        url += "?token=" + Shared.tokens[caller]
    elif caller is not None:
        frame = [{**request_, "auth": Shared.tokens[caller]}]
    answer = run(session_exchange(url, frame, hdrs))[0]
    assert answer["status"] == expected, answer


def test_a_session_frame_mixes_callers_by_their_own_tokens():
    n = Shared.node
    frame = [
        {"op": "put", "key": "other", "value": "1", "auth": Shared.tokens["alice"]},
        {"op": "put", "key": "other", "value": "2", "auth": Shared.tokens["root"]},
        {"op": "put", "key": "other", "value": "3"},  # the connection's: none
    ]
    answers = run(session_exchange(n.base.replace("http", "ws") + "/v1/session", frame, {}))
    assert [answers[i]["status"] for i in range(3)] == [403, 200, 401]


WATCH_CASES = [
    ("alice", "key=app/a", 101),
    ("alice", "prefix=app/", 101),
    ("alice", "key=other", 403),
    ("alice", "prefix=app", 403),
    ("reader", "prefix=app/", 101),
    ("nobody", "key=app/a", 403),
    ("root", "prefix=", 101),
    (None, "key=app/a", 401),
    ("bad", "key=app/a", 401),
]


@pytest.mark.parametrize("caller, query, expected", WATCH_CASES)
@pytest.mark.parametrize("how", ["header", "query"])
def test_watch(caller, query, expected, how):
    n = Shared.node
    url = n.base.replace("http", "ws") + "/v1/watch?" + query + "&start_revision=1"
    hdrs = {}
    if caller is not None:
        if how == "header":
            hdrs = headers(caller)
        else:
            url += "&token=" + Shared.tokens[caller]

    async def attempt():
        try:
            async with n.http.ws_connect(url, headers=hdrs) as ws:
                frame = await ws.receive_json(timeout=10)
                assert frame["events"], frame
                return 101
        except aiohttp.WSServerHandshakeError as e:
            return e.status

    assert run(attempt()) == expected


# --------------------------------------------------------------------------- tokens


def test_a_new_password_voids_the_old_tokens_and_the_new_one_works():
    n = Shared.node
    old = run(token_for(n, "nobody"))
    # Used once first: the node now knows its signature is good, and must still see it voided.
    assert run(n.call("POST", "/v1/lease", json={"ttl": 5}, headers={"Authorization": f"Bearer {old}"}))[0] == 200
    status, _ = run(n.call("PUT", "/v1/auth/users/nobody/password", json={"password": "new-pw"}, headers=headers("root")))
    assert status == 200
    status, answer = run(n.call("POST", "/v1/lease", json={"ttl": 5}, headers={"Authorization": f"Bearer {old}"}))
    assert status == 401 and "no longer valid" in answer["error"]
    status, answer = run(n.call("POST", "/v1/auth/authenticate", json={"name": "nobody", "password": "nobody-pw"}))
    assert status == 401 and answer["code"] == "unauthenticated"
    status, answer = run(n.call("POST", "/v1/auth/authenticate", json={"name": "nobody", "password": "new-pw"}))
    assert status == 200
    PASSWORDS["nobody"] = "new-pw"
    Shared.tokens["nobody"] = answer["token"]
    assert run(n.call("POST", "/v1/lease", json={"ttl": 5}, headers=headers("nobody")))[0] == 200


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer():
    n = Shared.node
    wrong = run(n.call("POST", "/v1/auth/authenticate", json={"name": "alice", "password": "nope"}))
    unknown = run(n.call("POST", "/v1/auth/authenticate", json={"name": "zed", "password": "nope"}))
    assert wrong == unknown == (401, {"error": "wrong user name or password", "code": "unauthenticated"})


def test_the_log_and_snapshots_never_hold_a_password():
    n = Shared.node
    store = n.node.store
    for name, password in PASSWORDS.items():
        stored = store.auth.users[name]["password_hash"]
        assert stored.startswith("scrypt$") and password not in stored
    assert all(password.encode() not in store.snapshot() for password in PASSWORDS.values())
    assert all(password.encode() not in _wal_bytes(n) for password in PASSWORDS.values())


def _wal_bytes(n: LocalNode) -> bytes:
    import pathlib

    return b"".join(p.read_bytes() for p in pathlib.Path(n.data_dir).rglob("*") if p.is_file())


def _tampered(token: str, how: str, number: int, text: str) -> str:
    head, _, signature = token.partition(".")
    if how == "truncate":
        return token[: number % len(token)]
    if how == "flip":
        i = number % len(token)
        return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    if how == "claims":  # a payload of the attacker's choosing, the old signature
        payload = json.dumps({"u": "root", "r": 1, "c": Shared.node.node.cluster_id, "e": int(time.time()) + 999})
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=") + "." + signature
    if how == "other secret":  # a well-formed token of another cluster (another member's secret)
        from abcd.kv.auth import AuthState

        other = AuthState()
        other.secret = "another-cluster"
        other.users["root"] = {"password_hash": "x", "roles": ["root"], "revision": 1}
        return issue_token(other, "root", Shared.node.node.cluster_id, 60)
    if how == "other cluster":  # signed right, but for another cluster id
        return issue_token(Shared.node.node.store.auth, "root", "not-this-cluster", 60)
    if how == "expired":
        return issue_token(Shared.node.node.store.auth, "root", Shared.node.node.cluster_id, -1)
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    how=st.sampled_from(["truncate", "flip", "claims", "other secret", "other cluster", "expired", "random"]),
    number=st.integers(min_value=0, max_value=10_000),
    text=st.text(max_size=300),
    where=st.sampled_from(["http", "session", "watch", "authenticate"]),
)
def test_tampered_tokens_are_refused_with_401(how, number, text, where):
    n = Shared.node
    token = _tampered(Shared.tokens["root"], how, number, text)
    if token == Shared.tokens["root"]:
        return
    hdrs = {"Authorization": f"Bearer {token}"} if token.isprintable() and "\n" not in token else {"Authorization": "x"}

    async def attempt():
        if where == "http":
            return await n.call("GET", "/v1/kv/app/a", headers=hdrs)
        if where == "authenticate":  # random names and passwords
            return await n.call("POST", "/v1/auth/authenticate", json={"name": token or "x", "password": text or "y"})
        if where == "session":
            answers = await session_exchange(
                n.base.replace("http", "ws") + "/v1/session", [{"op": "get", "key": "app/a", "auth": token}], {}
            )
            return answers[0]["status"], answers[0]["body"]
        try:
            async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/watch?key=app/a", headers=hdrs):
                return 101, {}
        except aiohttp.WSServerHandshakeError as e:
            return e.status, {}

    status, answer = run(attempt())
    assert status in (400, 401), (token, status, answer)
    assert n.node.failed is None


def test_a_token_expires(tmp_path):
    async def body(n: LocalNode) -> None:
        await setup_users(n)
        token = await token_for(n, "alice")
        hdrs = {"Authorization": f"Bearer {token}"}
        assert (await n.call("GET", "/v1/kv/app/a", headers=hdrs))[0] == 200
        expiry = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))["e"]
        await wait_until(lambda: time.time() > expiry + 0.01, "the token to expire", timeout=5)
        status, answer = await n.call("GET", "/v1/kv/app/a", headers=hdrs)
        assert status == 401 and "expired" in answer["error"]
        # A client renews its token by itself, once, and goes on.
        async with Client([n.base[len("http://"):]], user="alice", password=PASSWORDS["alice"]) as c:
            await c.put("app/c", "1")
            first = c._tokens.token
            await wait_until(lambda: time.time() > json.loads(
                base64.urlsafe_b64decode(first.split(".")[0] + "==="))["e"] + 0.01, "the client's token to expire")
            await c.put("app/c", "2")  # over the session
            assert (await c.get("app/c"))["kv"]["value"] == "2"
            await c.lease_grant(5)  # over HTTP
            assert c._tokens.token != first
        async with Client([n.base[len("http://"):]], user="alice", password="wrong") as c:
            with pytest.raises(ClientError) as caught:
                await c.get("app/a")
            assert caught.value.status == 401

    run_with_node(tmp_path, body, auth_token_ttl=1.0)


def test_auth_off_ignores_tokens_and_authenticate_says_so(tmp_path):
    async def body(n: LocalNode) -> None:
        status, _ = await n.call("PUT", "/v1/kv/k", json={"value": "v"}, headers={"Authorization": "Bearer junk"})
        assert status == 200
        status, answer = await n.call("POST", "/v1/auth/authenticate", json={"name": "root", "password": "x"})
        assert status == 400 and answer["code"] == "auth_not_enabled"
        status, answer = await n.call("POST", "/v1/auth/enable")
        assert status == 400 and answer["code"] == "root_user_missing"
        assert (await n.call("GET", "/v1/auth/status"))[1] == {"enabled": False, "revision": 0}

    run_with_node(tmp_path, body)


def test_the_common_name_of_a_verified_client_certificate_is_the_user():
    from types import SimpleNamespace

    from abcd.api.auth import credential_of, peer_common_name

    cert = {"subject": ((("countryName", "FR"),), (("commonName", "alice"),))}
    request = SimpleNamespace(transport=SimpleNamespace(get_extra_info=lambda name: cert if name == "peercert" else None),
                              headers={}, query={})
    assert peer_common_name(request) == "alice"
    credential = credential_of(request)
    assert credential.common_name == "alice" and credential.token is None
    principal = Shared.node.node.gate.principal(credential)
    assert principal.user == "alice"
    Shared.node.node.store.auth.check(principal.user, {"op": "get", "key": "app/a"})
    no_cert = SimpleNamespace(transport=SimpleNamespace(get_extra_info=lambda name: None), headers={}, query={})
    assert peer_common_name(no_cert) is None
