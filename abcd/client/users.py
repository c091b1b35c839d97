"""The user and role calls of `abcd.client.Client` (docs/client.md, docs/security.md).

Each is one HTTP call of docs/api.md's auth section, made through the client's own
retrying machinery (`_http_call`), so it fails over and backs off as every call does.
"""
from __future__ import annotations

from urllib.parse import quote


def _segment(text: str) -> str:
    return quote(text, safe="")


class UserAdmin:
    """Users, roles, permissions and auth on/off; mixed into Client, whose `_http_call`
    they use."""

    async def auth_status(self) -> dict:
        """`{"enabled", "revision"}`."""
        return await self._http_call("GET", "/v1/auth/status", write=False)

    async def auth_enable(self) -> dict:
        """Turn auth on (refused unless the user root exists)."""
        return await self._http_call("POST", "/v1/auth/enable", write=True)

    async def auth_disable(self) -> dict:
        return await self._http_call("POST", "/v1/auth/disable", write=True)

    async def user_add(self, name: str, password: str) -> dict:
        return await self._http_call("POST", "/v1/auth/users", body={"name": name, "password": password}, write=True)

    async def user_delete(self, name: str) -> dict:
        return await self._http_call("DELETE", f"/v1/auth/users/{_segment(name)}", write=True)

    async def user_passwd(self, name: str, password: str) -> dict:
        path = f"/v1/auth/users/{_segment(name)}/password"
        return await self._http_call("PUT", path, body={"password": password}, write=True)

    async def user_grant_role(self, name: str, role: str) -> dict:
        return await self._http_call("PUT", f"/v1/auth/users/{_segment(name)}/roles/{_segment(role)}", write=True)

    async def user_revoke_role(self, name: str, role: str) -> dict:
        return await self._http_call("DELETE", f"/v1/auth/users/{_segment(name)}/roles/{_segment(role)}", write=True)

    async def user_list(self) -> dict:
        """`{"users": [{"name", "roles"}]}` (root only once auth is on)."""
        return await self._http_call("GET", "/v1/auth/users", write=False)

    async def role_add(self, name: str) -> dict:
        return await self._http_call("POST", "/v1/auth/roles", body={"name": name}, write=True)

    async def role_delete(self, name: str) -> dict:
        return await self._http_call("DELETE", f"/v1/auth/roles/{_segment(name)}", write=True)

    async def role_grant_permission(
        self, name: str, key: str, perm: str, *, range_end: str | None = None, prefix: bool = False
    ) -> dict:
        """Let role `name` `perm` ("read", "write", "readwrite") `key`, or [key, range_end),
        or every key starting with `key` (`prefix`)."""
        body: dict = {"key": key, "perm": perm}
        if range_end is not None:
            body["range_end"] = range_end
        if prefix:
            body["prefix"] = True
        return await self._http_call("POST", f"/v1/auth/roles/{_segment(name)}/permissions", body=body, write=True)

    async def role_revoke_permission(
        self, name: str, key: str, *, range_end: str | None = None, prefix: bool = False
    ) -> dict:
        query = "key=" + quote(key, safe="")
        if range_end is not None:
            query += "&range_end=" + quote(range_end, safe="")
        if prefix:
            query += "&prefix=true"
        return await self._http_call("DELETE", f"/v1/auth/roles/{_segment(name)}/permissions?{query}", write=True)

    async def role_list(self) -> dict:
        """`{"roles": [{"name", "permissions"}]}` (root only once auth is on)."""
        return await self._http_call("GET", "/v1/auth/roles", write=False)
