"""Who is calling: passwords, tokens and the check of a request against the auth state.

The auth state itself (users, roles, permissions, whether auth is on, the cluster's
token secret) is replicated in the store (kv/auth.py).  This module is what a node does
with it, outside the log:

* Passwords are hashed here, on the node that received them, before the command is
  proposed: the log and the snapshots only ever hold `scrypt$N$r$p$salt$hash`, and apply
  stays fast (a hash costs tens of milliseconds, on purpose).
* A token is `base64url(payload).base64url(HMAC-SHA256(secret, payload))`, payload the
  JSON `{"u": user, "r": the user's revision, "c": cluster id, "e": expiry (Unix
  seconds)}`.  Any member verifies it with the replicated secret, without a lookup; a
  new password (or the user deleted) changes the user's revision and so voids every
  older token.  Expiry reads this machine's clock: members' clocks must agree to within
  a small part of the token TTL.
* `principal(credential)` turns what came with a request (a token, or the common name
  of a verified client certificate) into the user it acts for, or a 401.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from dataclasses import dataclass

import orjson

from ..kv import KVError
from ..kv.auth import AuthState, required_permissions, unauthenticated

# scrypt's cost: N=2**15, r=8 takes about 32 MiB and tens of milliseconds a hash.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES = 16
MAX_PASSWORD_BYTES = 1024
MAX_TOKEN_CHARS = 4096
DEFAULT_TOKEN_TTL = 300.0
MAX_VERIFIED_TOKENS = 4096
HOW_TO_AUTHENTICATE = (
    "get a token with POST /v1/auth/authenticate {\"name\", \"password\"} and send it as "
    "'Authorization: Bearer <token>'"
)


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=2**27)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (False for a hash it cannot read)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        n, r, p = int(n), int(r), int(p)
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=n, r=r, p=p, maxmem=2**28, dklen=len(expected) or 1)
    except (ValueError, TypeError, UnicodeEncodeError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


def check_password_text(password: object) -> str:
    """The password of a request, or KVError 400 saying what is wrong with it."""
    if type(password) is not str or not password:
        raise KVError(400, "bad_request", "password must be a non-empty string")
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        raise KVError(400, "bad_request", "password is not valid Unicode text") from None
    if size > MAX_PASSWORD_BYTES:
        raise KVError(400, "bad_request", f"password is {size} bytes; the limit is {MAX_PASSWORD_BYTES}")
    return password


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- tokens


def issue_token(auth: AuthState, user: str, cluster_id: str, ttl: float, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + ttl)
    payload = orjson.dumps({"u": user, "r": auth.users[user]["revision"], "c": cluster_id, "e": expiry})
    return f"{_b64(payload)}.{_b64(_sign(auth.secret, payload))}"


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()


def verify_token(auth: AuthState, token: object, cluster_id: str, now: float | None = None) -> str:
    """The user a token acts for; KVError 401 saying why it is refused."""
    if type(token) is not str or not token or len(token) > MAX_TOKEN_CHARS:
        raise unauthenticated(f"the token is missing or malformed; {HOW_TO_AUTHENTICATE}")
    head, dot, signature = token.partition(".")
    try:
        payload = _unb64(head)
        given = _unb64(signature)
    except (ValueError, binascii.Error):
        raise unauthenticated(f"the token is malformed; {HOW_TO_AUTHENTICATE}") from None
    if not dot or not auth.secret or not hmac.compare_digest(given, _sign(auth.secret, payload)):
        raise unauthenticated(f"the token's signature is not valid for this cluster; {HOW_TO_AUTHENTICATE}")
    try:
        claims = orjson.loads(payload)
        user, revision, cluster, expiry = claims["u"], claims["r"], claims["c"], claims["e"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        raise unauthenticated(f"the token is malformed; {HOW_TO_AUTHENTICATE}") from None
    if cluster != cluster_id:
        raise unauthenticated(f"the token was issued by another cluster; {HOW_TO_AUTHENTICATE}")
    if type(expiry) is not int or expiry <= (time.time() if now is None else now):
        raise unauthenticated(f"the token has expired; {HOW_TO_AUTHENTICATE}")
    entry = auth.users.get(user) if type(user) is str else None
    if entry is None or entry["revision"] != revision:
        raise unauthenticated(
            f"the token is no longer valid (its user was deleted or its password changed); {HOW_TO_AUTHENTICATE}"
        )
    return user


def _expiry(token: str) -> int:
    """The expiry of a token verify_token accepted."""
    return orjson.loads(_unb64(token.partition(".")[0]))["e"]


# --------------------------------------------------------------------------- principals


@dataclass(frozen=True, slots=True)
class Credential:
    """What came with a request: a bearer token, and/or the common name of a verified
    client certificate (used when there is no token)."""

    token: str | None = None
    common_name: str | None = None


NO_CREDENTIAL = Credential()


@dataclass(frozen=True, slots=True)
class Principal:
    """The user a request acts for, checked at auth `revision`; `token` is what a
    follower passes on to the leader with a forwarded request."""

    user: str
    revision: int
    token: str


class Gate:
    """A node's checks: who is calling, and may they do this."""

    def __init__(self, store, cluster_id: str, token_ttl: float = DEFAULT_TOKEN_TTL) -> None:
        self._store = store
        self.cluster_id = cluster_id
        self.token_ttl = token_ttl
        # token -> (user, the user's revision, expiry) of tokens whose signature checked out
        self._verified: dict[str, tuple[str, int, int]] = {}

    @property
    def enabled(self) -> bool:
        return self._store.auth.enabled

    def principal(self, credential: Credential) -> Principal | None:
        """None when auth is off; else the caller's Principal, or KVError 401."""
        auth = self._store.auth
        if not auth.enabled:
            return None
        token = credential.token
        if token is not None:
            # A session sends the same token with every frame: its signature is checked
            # once, then only what can change (expiry, the user's revision) is.
            known = self._verified.get(token)
            if known is not None:
                user, revision, expiry = known
                entry = auth.users.get(user)
                if entry is not None and entry["revision"] == revision and time.time() < expiry:
                    return Principal(user, auth.revision, token)
            user = verify_token(auth, token, self.cluster_id)
            if len(self._verified) >= MAX_VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = (user, auth.users[user]["revision"], _expiry(token))
            return Principal(user, auth.revision, token)
        name = credential.common_name
        if name is not None and name in auth.users:
            return Principal(name, auth.revision, self.issue(name))
        raise unauthenticated(f"this call needs a user; {HOW_TO_AUTHENTICATE}")

    def issue(self, user: str) -> str:
        return issue_token(self._store.auth, user, self.cluster_id, self.token_ttl)

    def authorize(self, principal: Principal | None, op: dict, write: bool) -> dict:
        """`op` as it is proposed: a write with the user and the auth revision it was
        checked at (so that apply checks again if permissions changed since); KVError
        401/403."""
        if principal is None:
            if self._store.auth.enabled:
                raise unauthenticated(f"this call needs a user; {HOW_TO_AUTHENTICATE}")
            return op
        auth = self._store.auth
        auth.check(principal.user, op)
        if write:
            op["auth_user"] = principal.user
            op["auth_revision"] = auth.revision
        return op

    def require_root(self, principal: Principal | None, what: str) -> None:
        if principal is None:
            if self._store.auth.enabled:
                raise unauthenticated(f"this call needs a user; {HOW_TO_AUTHENTICATE}")
            return
        if not self._store.auth.is_root(principal.user):
            raise KVError(403, "permission_denied", f"user {principal.user!r} may not {what} (only root may)")


__all__ = ["Gate", "Credential", "Principal", "hash_password", "check_password", "required_permissions"]
