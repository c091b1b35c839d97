"""Users, roles and permissions in the state machine: commands, checks, snapshots."""
import itertools

import pytest

from abcd.kv import KVError, KVStore, validate_command
from abcd.kv.auth import AuthState, prefix_end
from abcd.kv.snapshot import encode_json


class Applied:
    """A store and its log indexes."""

    def __init__(self) -> None:
        self.store = KVStore()
        self.index = itertools.count(1)

    def __call__(self, **cmd) -> dict:
        return self.store.apply(cmd, index=next(self.index))

    def fails(self, code: str, **cmd) -> KVError:
        with pytest.raises(KVError) as caught:
            self(**cmd)
        assert caught.value.code == code, caught.value
        return caught.value


def with_users() -> Applied:
    a = Applied()
    a(op="user_add", name="root", password_hash="h-root")
    a(op="user_add", name="alice", password_hash="h-alice")
    a(op="role_add", name="app")
    a(op="role_grant_permission", name="app", key="app/", range_end=prefix_end("app/"), perm="readwrite")
    a(op="role_grant_permission", name="app", key="config", range_end="", perm="read")
    a(op="user_grant_role", name="alice", role="app")
    a(op="auth_enable", secret="s")
    return a


def test_enable_is_refused_until_the_user_root_exists():
    a = Applied()
    a.fails("root_user_missing", op="auth_enable", secret="s")
    assert not a.store.auth.enabled
    a(op="user_add", name="root", password_hash="h")
    assert a.store.auth.users["root"]["roles"] == ["root"]  # root gets role root by itself
    a(op="auth_enable", secret="s")
    assert a.store.auth.enabled and a.store.auth.secret == "s"
    a(op="auth_disable")
    a(op="auth_enable", secret="another")
    assert a.store.auth.secret == "s", "a secret once chosen stays: tokens signed with it keep working"


def test_root_stays_root_while_auth_is_on():
    a = with_users()
    a.fails("root_required", op="user_delete", name="root")
    a.fails("root_required", op="user_revoke_role", name="root", role="root")
    a.fails("root_required", op="role_delete", name="root")
    a.fails("root_required", op="role_grant_permission", name="root", key="k", range_end="", perm="read")
    assert a.store.auth.is_root("root")


def test_failed_commands_change_nothing_and_name_what_is_wrong():
    a = with_users()
    before = a.store.auth.capture()
    assert "already exists" in a.fails("already_exists", op="user_add", name="alice", password_hash="x").message
    a.fails("user_not_found", op="user_passwd", name="bob", password_hash="x")
    a.fails("role_not_found", op="user_grant_role", name="alice", role="nope")
    a.fails("permission_not_found", op="role_revoke_permission", name="app", key="zzz", range_end="")
    a.fails("role_not_granted", op="user_revoke_role", name="root", role="app")
    assert a.store.auth.capture() == before


@pytest.mark.parametrize(
    "perm, start, end, allowed",
    [
        ("write", "app/x", "app/x\0", True),
        ("read", "app/x", "app/x\0", True),
        ("write", "app0", "app0\0", False),  # just past the prefix
        ("write", "app", "app\0", False),  # just before it
        ("read", "config", "config\0", True),
        ("write", "config", "config\0", False),  # read only
        ("read", "config2", "config2\0", False),  # one key, not a prefix
        ("read", "app/", prefix_end("app/"), True),  # the whole prefix
        ("read", "app", prefix_end("app"), False),  # wider than the prefix
        ("read", "", None, False),  # every key
    ],
)
def test_permissions_cover_keys_and_ranges(perm, start, end, allowed):
    assert with_users().store.auth.allows("alice", perm, start, end) is allowed


def test_adjacent_permissions_join_into_one_range():
    a = with_users()
    a(op="role_grant_permission", name="app", key="b", range_end="c", perm="read")
    a(op="role_grant_permission", name="app", key="c", range_end="d", perm="read")
    auth = a.store.auth
    assert auth.allows("alice", "read", "b", "d")
    assert not auth.allows("alice", "read", "b", "d\0")
    a(op="role_grant_permission", name="app", key="m", range_end="\0", perm="write")
    assert auth.allows("alice", "write", "zzz", None), "range_end \\0 reaches every key from m on"


def test_a_txn_needs_every_key_of_both_branches():
    auth = with_users().store.auth
    txn = validate_command({
        "op": "txn", "compare": [{"key": "config", "target": "version", "op": ">", "value": 0}],
        "success": [{"put": {"key": "app/a", "value": "1"}}],
        "failure": [{"put": {"key": "other", "value": "1"}}],
    })
    with pytest.raises(KVError) as caught:
        auth.check("alice", txn)
    assert caught.value.status == 403 and "'other'" in caught.value.message and "failure" in caught.value.message
    txn["failure"] = [{"get": {"key": "app/b"}}]
    auth.check("alice", txn)


def test_a_write_checked_before_a_revoke_is_refused_at_apply():
    a = with_users()
    put = validate_command({"op": "put", "key": "app/a", "value": "1", "auth_user": "alice",
                            "auth_revision": a.store.auth.revision})
    a(op="user_revoke_role", name="alice", role="app")  # committed between the check and the apply
    with pytest.raises(KVError) as caught:
        a.store.apply(put, index=next(a.index))
    assert caught.value.status == 403
    assert a.store.get("app/a") is None


def test_a_write_checked_at_the_current_revision_is_applied():
    a = with_users()
    put = {"op": "put", "key": "app/a", "value": "1", "auth_user": "alice", "auth_revision": a.store.auth.revision}
    a.store.apply(put, index=next(a.index))
    assert a.store.get("app/a")["value"] == "1"


def test_revoking_a_lease_needs_write_on_its_keys():
    a = with_users()
    lease = a(op="lease_grant", ttl=60)["id"]
    a(op="put", key="root-only", value="1", lease=lease)
    revision = a.store.auth.revision
    a.fails("permission_denied", op="lease_revoke", lease=lease, auth_user="alice", auth_revision=revision)
    assert a.store.get("root-only") is not None
    a(op="lease_revoke", lease=lease, auth_user="root", auth_revision=revision)
    assert a.store.get("root-only") is None


def test_clients_cannot_claim_a_user():
    from abcd.kv import validate_request

    with pytest.raises(KVError) as caught:
        validate_request({"op": "put", "key": "k", "value": "v", "auth_user": "root", "auth_revision": 1})
    assert caught.value.status == 400
    with pytest.raises(KVError):
        validate_request({"op": "user_add", "name": "x", "password_hash": "h"})
    from abcd.kv.validate import validate_admin

    with pytest.raises(KVError) as caught:
        validate_admin({"op": "user_add", "name": "x", "password_hash": "h", "auth_user": "root", "auth_revision": 1})
    assert "unknown field 'auth_revision'" in caught.value.message
    # The log's form, with the user it was checked for, is the node's own.
    assert validate_command({"op": "role_add", "name": "r", "auth_user": "root", "auth_revision": 1})["auth_user"] == "root"


def test_auth_state_survives_a_snapshot():
    a = with_users()
    restored = KVStore.restore(a.store.snapshot())
    assert restored.auth.capture() == a.store.auth.capture()
    assert restored.auth.enabled and restored.auth.allows("alice", "write", "app/x", "app/x\0")


def test_a_snapshot_without_auth_restores_with_auth_off():
    import json

    state = json.loads(encode_json(KVStore().capture()))
    del state["auth"]
    restored = KVStore.restore(json.dumps(state).encode())
    assert not restored.auth.enabled and restored.auth.users == {}


def test_bad_auth_commands_are_refused_before_the_log():
    for bad in (
        {"op": "user_add", "name": "", "password_hash": "h"},
        {"op": "user_add", "name": "a", "password_hash": 3},
        {"op": "user_add", "name": "a", "password_hash": "h", "extra": 1},
        {"op": "role_grant_permission", "name": "r", "key": "k", "range_end": "", "perm": "all"},
        {"op": "role_grant_permission", "name": "r", "key": "", "range_end": "", "perm": "read"},
        {"op": "user_grant_role", "name": "a"},
    ):
        with pytest.raises(KVError) as caught:
            validate_command(bad)
        assert caught.value.status in (400, 413), bad


def test_prefix_end():
    assert prefix_end("a/") == "a0"
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff") == "\0"
    assert AuthState().capture()["users"] == []
