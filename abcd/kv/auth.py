"""Users, roles and permissions: the part of the state machine that says who may do what.

Replicated like every write: the commands below go through the log and are applied in
order on every member, and the state is part of the store's snapshots.  Like the rest
of the store it has no clock, no randomness and no I/O: a password arrives already
hashed (the node that received it hashed it before proposing, node/auth.py), and the
cluster's token secret arrives inside the `auth_enable` command that first needs it.

    {"op": "auth_enable", "secret"}        refused unless the user root exists
    {"op": "auth_disable"}
    {"op": "user_add", "name", "password_hash"}       user root gets role root
    {"op": "user_delete" , "name"}
    {"op": "user_passwd", "name", "password_hash"}
    {"op": "user_grant_role" | "user_revoke_role", "name", "role"}
    {"op": "role_add" | "role_delete", "name"}
    {"op": "role_grant_permission", "name", "key", "range_end", "perm"}
    {"op": "role_revoke_permission", "name", "key", "range_end"}

A permission covers one key (`range_end` ""), or the keys in [key, range_end), or every
key from `key` on (`range_end` "\\0", as etcd).  `perm` is read, write or readwrite.
The role root is always there, has every permission and cannot be changed.

`revision` counts the changes applied here.  A user's own `revision` is the auth
revision at which their password was last set: a token names it, so a new password, or
the user deleted and added again, makes older tokens worthless.  A write is proposed
with the auth revision its permission was checked at; if the revision moved before it
is applied, the store checks again (store.py), so a revoked permission cannot slip in
between the check and the apply.
"""
from __future__ import annotations

import copy

from .errors import MAX_KEY_BYTES, KVError, bad_request

ROOT = "root"
PERMS = ("read", "write", "readwrite")
MAX_NAME_CHARS = 128
MAX_PERMISSIONS_PER_ROLE = 1024
TO_THE_END = "\0"  # range_end meaning "every key from key on"

AUTH_OPS = (
    "auth_enable", "auth_disable", "user_add", "user_delete", "user_passwd", "user_grant_role",
    "user_revoke_role", "role_add", "role_delete", "role_grant_permission", "role_revoke_permission",
)


def permission_denied(message: str) -> KVError:
    return KVError(403, "permission_denied", message)


def unauthenticated(message: str) -> KVError:
    return KVError(401, "unauthenticated", message)


def prefix_end(prefix: str) -> str:
    """The range_end of every key starting with `prefix` ("\\0": to the end)."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return TO_THE_END
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


def _interval(key: str, range_end: str) -> tuple[str, str | None]:
    """[start, end) with end None for "to the end"."""
    if range_end == "":
        return key, key + "\0"  # exactly `key`: nothing sorts between key and key + "\0"
    if range_end == TO_THE_END:
        return key, None
    return key, range_end


# --------------------------------------------------------------------------- validation


def validate_auth_command(r: dict) -> dict:
    """The normal form of an auth command (raises KVError 400)."""
    kind = r["op"]
    fields = _FIELDS[kind]
    unknown = sorted(set(r) - set(fields) - {"op", "id", "request_id"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} in {kind} request; expected {', '.join(fields) or 'none'}")
    normal: dict = {"op": kind}
    for name in fields:
        value = r.get(name)
        if name == "range_end":
            value = "" if value is None else value
            _check_key(value, "range_end", allow_empty=True)
        elif name == "key":
            _check_key(value, "key", allow_empty=True)
        elif name == "perm":
            if value not in PERMS or type(value) is not str:
                raise bad_request(f"perm must be one of {', '.join(PERMS)}; got {value!r}"[:200])
        elif name == "password_hash" or name == "secret":
            if type(value) is not str or not 0 < len(value) <= 512:
                raise bad_request(f"{name} must be a non-empty string of at most 512 characters")
        else:
            _check_name(value, name)
        normal[name] = value
    if kind.startswith("role_") and kind.endswith("permission") and normal["key"] == "" and normal["range_end"] == "":
        raise bad_request("key must be a non-empty string unless range_end is given")
    return normal


def _check_name(value: object, name: str) -> None:
    if type(value) is not str or not value:
        raise bad_request(f"{name} must be a non-empty string")
    if len(value) > MAX_NAME_CHARS or not value.isprintable():
        raise bad_request(f"{name} must be at most {MAX_NAME_CHARS} printable characters")


def _check_key(value: object, name: str, *, allow_empty: bool) -> None:
    if type(value) is not str:
        raise bad_request(f"{name} must be a string")
    if not value and not allow_empty:
        raise bad_request(f"{name} must be a non-empty string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise bad_request(f"{name} is not valid Unicode text") from None
    if size > MAX_KEY_BYTES:
        raise KVError(413, "too_large", f"{name} is {size} bytes; the limit is {MAX_KEY_BYTES}")


_FIELDS: dict[str, tuple[str, ...]] = {
    "auth_enable": ("secret",),
    "auth_disable": (),
    "user_add": ("name", "password_hash"),
    "user_delete": ("name",),
    "user_passwd": ("name", "password_hash"),
    "user_grant_role": ("name", "role"),
    "user_revoke_role": ("name", "role"),
    "role_add": ("name",),
    "role_delete": ("name",),
    "role_grant_permission": ("name", "key", "range_end", "perm"),
    "role_revoke_permission": ("name", "key", "range_end"),
}


# --------------------------------------------------------------------------- the state


class AuthState:
    def __init__(self) -> None:
        self.enabled = False
        self.revision = 0
        self.secret = ""
        # name -> {"password_hash", "roles": [role, ...] sorted, "revision"}
        self.users: dict[str, dict] = {}
        # name -> [{"key", "range_end", "perm"}, ...] in grant order
        self.roles: dict[str, list[dict]] = {}
        # (user, "read"/"write") -> merged intervals; cleared by every change.
        self._cache: dict[tuple[str, str], list[tuple[str, str | None]]] = {}

    # ------------------------------------------------------------------ apply

    def apply(self, cmd: dict) -> dict:
        """Apply one auth command; raises KVError (and changes nothing) when it fails."""
        kind = cmd["op"]
        getattr(self, "_" + kind)(cmd)
        self.revision += 1
        self._cache.clear()
        return {"auth_revision": self.revision}

    def _auth_enable(self, cmd: dict) -> None:
        if ROOT not in self.users:
            raise KVError(400, "root_user_missing", "auth cannot be enabled before the user root exists (add it first)")
        self.enabled = True
        if not self.secret:
            self.secret = cmd["secret"]

    def _auth_disable(self, cmd: dict) -> None:
        self.enabled = False

    def _user_add(self, cmd: dict) -> None:
        name = cmd["name"]
        if name in self.users:
            raise KVError(409, "already_exists", f"user {name!r} already exists")
        roles = [ROOT] if name == ROOT else []
        self.users[name] = {"password_hash": cmd["password_hash"], "roles": roles, "revision": self.revision + 1}

    def _user_delete(self, cmd: dict) -> None:
        name = self._user(cmd["name"])
        if name == ROOT and self.enabled:
            raise KVError(409, "root_required", "the user root cannot be deleted while auth is enabled")
        del self.users[name]

    def _user_passwd(self, cmd: dict) -> None:
        user = self.users[self._user(cmd["name"])]
        user["password_hash"] = cmd["password_hash"]
        user["revision"] = self.revision + 1

    def _user_grant_role(self, cmd: dict) -> None:
        user = self.users[self._user(cmd["name"])]
        role = self._role(cmd["role"])
        if role not in user["roles"]:
            user["roles"] = sorted(user["roles"] + [role])

    def _user_revoke_role(self, cmd: dict) -> None:
        name = self._user(cmd["name"])
        user = self.users[name]
        role = cmd["role"]
        if role not in user["roles"]:
            raise KVError(404, "role_not_granted", f"user {name!r} does not have role {role!r}")
        if name == ROOT and role == ROOT and self.enabled:
            raise KVError(409, "root_required", "the user root must keep role root while auth is enabled")
        user["roles"] = [r for r in user["roles"] if r != role]

    def _role_add(self, cmd: dict) -> None:
        name = cmd["name"]
        if name in self.roles or name == ROOT:
            raise KVError(409, "already_exists", f"role {name!r} already exists")
        self.roles[name] = []

    def _role_delete(self, cmd: dict) -> None:
        name = cmd["name"]
        if name == ROOT:
            raise KVError(409, "root_required", "the role root cannot be deleted")
        self._role(name)
        del self.roles[name]
        for user in self.users.values():
            if name in user["roles"]:
                user["roles"] = [r for r in user["roles"] if r != name]

    def _role_grant_permission(self, cmd: dict) -> None:
        name = cmd["name"]
        if name == ROOT:
            raise KVError(409, "root_required", "the role root has every permission already")
        permissions = self.roles[self._role(name)]
        key, range_end, perm = cmd["key"], cmd["range_end"], cmd["perm"]
        for permission in permissions:
            if permission["key"] == key and permission["range_end"] == range_end:
                permission["perm"] = perm  # as etcd: granting the same range again replaces it
                return
        if len(permissions) >= MAX_PERMISSIONS_PER_ROLE:
            raise bad_request(f"role {name!r} has {MAX_PERMISSIONS_PER_ROLE} permissions; the limit")
        permissions.append({"key": key, "range_end": range_end, "perm": perm})

    def _role_revoke_permission(self, cmd: dict) -> None:
        name = self._role(cmd["name"])
        permissions = self.roles.get(name, [])
        key, range_end = cmd["key"], cmd["range_end"]
        kept = [p for p in permissions if not (p["key"] == key and p["range_end"] == range_end)]
        if len(kept) == len(permissions):
            raise KVError(404, "permission_not_found", f"role {name!r} has no permission on key {key!r} range_end {range_end!r}")
        self.roles[name] = kept

    def _user(self, name: str) -> str:
        if name not in self.users:
            raise KVError(404, "user_not_found", f"user {name!r} does not exist")
        return name

    def _role(self, name: str) -> str:
        if name != ROOT and name not in self.roles:
            raise KVError(404, "role_not_found", f"role {name!r} does not exist")
        return name

    # ------------------------------------------------------------------ checks

    def is_root(self, user: str) -> bool:
        entry = self.users.get(user)
        return entry is not None and ROOT in entry["roles"]

    def allows(self, user: str, perm: str, start: str, end: str | None) -> bool:
        """Whether `user` may `perm` ("read"/"write") every key in [start, end)."""
        entry = self.users.get(user)
        if entry is None:
            return False
        if ROOT in entry["roles"]:
            return True
        intervals = self._cache.get((user, perm))
        if intervals is None:
            intervals = self._cache[(user, perm)] = self._merged(entry["roles"], perm)
        for lo, hi in intervals:
            if lo > start:
                return False
            if hi is None or (end is not None and end <= hi):
                return True
        return False

    def _merged(self, roles: list[str], perm: str) -> list[tuple[str, str | None]]:
        spans = sorted(
            (_interval(p["key"], p["range_end"]) for role in roles for p in self.roles.get(role, ())
             if p["perm"] == perm or p["perm"] == "readwrite"),
            key=lambda span: span[0],
        )
        merged: list[list] = []
        for lo, hi in spans:
            if merged and (merged[-1][1] is None or lo <= merged[-1][1]):
                if merged[-1][1] is not None and (hi is None or hi > merged[-1][1]):
                    merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        return [(lo, hi) for lo, hi in merged]

    def check(self, user: str, op: dict) -> None:
        """Raise 403 permission_denied unless `user` may run the (normalized) `op`."""
        entry = self.users.get(user)
        if entry is None:
            raise unauthenticated(f"user {user!r} no longer exists; authenticate again")
        if ROOT in entry["roles"]:
            return
        kind = op["op"]
        if kind == "put" or kind == "get":  # the common calls, without building their descriptions
            key = op["key"]
            if self.allows(user, "write" if kind == "put" else "read", key, key + "\0"):
                return
        for perm, start, end, what in required_permissions(op):
            if perm == "root" or not self.allows(user, perm, start, end):
                raise permission_denied(f"user {user!r} may not {what}")

    # ------------------------------------------------------------------ snapshots

    def capture(self) -> dict:
        return copy.deepcopy({
            "enabled": self.enabled, "revision": self.revision, "secret": self.secret,
            "users": [[name, self.users[name]] for name in sorted(self.users)],
            "roles": [[name, self.roles[name]] for name in sorted(self.roles)],
        })

    @classmethod
    def from_capture(cls, state: object) -> "AuthState":
        """Raises ValueError/TypeError/KeyError on a malformed capture."""
        if type(state) is not dict:
            raise ValueError("auth must be an object")
        auth = cls()
        auth.enabled = state["enabled"] is True
        auth.revision = state["revision"]
        auth.secret = state["secret"]
        if type(auth.revision) is not int or type(auth.secret) is not str:
            raise ValueError("auth revision and secret must be an integer and a string")
        for name, user in state["users"]:
            if type(user["password_hash"]) is not str or type(user["revision"]) is not int:
                raise ValueError(f"bad user {name!r}")
            auth.users[str(name)] = {
                "password_hash": user["password_hash"], "roles": [str(r) for r in user["roles"]],
                "revision": user["revision"],
            }
        for name, permissions in state["roles"]:
            auth.roles[str(name)] = [
                {"key": str(p["key"]), "range_end": str(p["range_end"]), "perm": str(p["perm"])} for p in permissions
            ]
        return auth

    def describe_users(self) -> list[dict]:
        return [{"name": name, "roles": list(self.users[name]["roles"])} for name in sorted(self.users)]

    def describe_roles(self) -> list[dict]:
        roles = [{"name": ROOT, "permissions": "all"}]
        return roles + [{"name": name, "permissions": [dict(p) for p in self.roles[name]]} for name in sorted(self.roles)]


def required_permissions(op: dict) -> list[tuple[str, str, str | None, str]]:
    """(perm, start, end, what) for every key range a normalized op touches; perm "root"
    when only root may run it.  Leases: a grant or keepalive needs no key; a revoke needs
    write on the lease's keys, which only the store knows (checked at apply)."""
    kind = op["op"]
    if kind == "put":
        return [_one("write", op["key"], "put")]
    if kind == "get":
        return [_one("read", op["key"], "get")]
    if kind == "delete":
        return [_span("write", op["key"], op["prefix"], "delete")]
    if kind == "range":
        return [_span("read", op["prefix"], True, "range")]
    if kind == "txn":
        needs = [_one("read", c["key"], "compare in a txn") for c in op["compare"]]
        for branch in ("success", "failure"):
            for o in op[branch]:
                if "put" in o:
                    needs.append(_one("write", o["put"]["key"], f"put in the txn's {branch} branch"))
                elif "get" in o:
                    needs.append(_one("read", o["get"]["key"], f"get in the txn's {branch} branch"))
                else:
                    d = o["delete"]
                    needs.append(_span("write", d["key"], d["prefix"], f"delete in the txn's {branch} branch"))
        return needs
    if kind in ("lease_grant", "lease_keepalive", "lease_revoke"):
        return []
    return [("root", "", None, f"run {kind} (only root may)")]


def _one(perm: str, key: str, what: str) -> tuple[str, str, str | None, str]:
    return perm, key, key + "\0", f"{perm} key {key!r} ({what})"


def _span(perm: str, key: str, prefix: bool, what: str) -> tuple[str, str, str | None, str]:
    if not prefix:
        return _one(perm, key, what)
    end = prefix_end(key)
    return perm, key, None if end == TO_THE_END else end, f"{perm} keys with prefix {key!r} ({what})"
