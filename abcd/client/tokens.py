"""The token of a client's user: got when a call is first refused with 401 (so a cluster
without auth costs nothing), renewed when a later call is refused (docs/client.md,
"Users")."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .errors import error_for

# authenticate(base, {"name", "password"}) -> (status, body, retry_after): the call
# POST /v1/auth/authenticate at one endpoint.
Authenticate = Callable[[str, dict], Awaitable[tuple[int, dict, float | None]]]


class Tokens:
    """The user's credentials and current token (None until a call needs one)."""

    def __init__(self, credentials: tuple[str, str] | None, authenticate: Authenticate) -> None:
        self.credentials = credentials
        self.token: str | None = None
        self._authenticate = authenticate
        self._lock = asyncio.Lock()

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    async def renew(self, base: str, stale: str | None) -> None:
        """Authenticate at `base` unless another call renewed `stale` meanwhile;
        ClientError 401 for a wrong user or password.  A cluster without auth leaves
        the token None."""
        if self.credentials is None:
            return
        async with self._lock:
            if self.token != stale:
                return
            user, password = self.credentials
            status, body, _ = await self._authenticate(base, {"name": user, "password": password})
            if status == 200 and isinstance(body.get("token"), str):
                self.token = body["token"]
            elif body.get("code") == "auth_not_enabled":
                self.token = None
            else:
                raise error_for(status, body)
