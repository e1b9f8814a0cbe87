"""The service's calls to the hub: the REST API with the service's own token, and a
candidate's server through the hub's proxy with a token scoped to that server alone.

`ib hub` gives the service's token only scopes filtered to the group ib-candidates
(read and stop their servers, make their tokens, delete them): it cannot touch an
interviewer's account.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from .hubenv import HubEnv

log = logging.getLogger("ib_extension.service.hubclient")


class HubError(Exception):
    """The hub refused or failed a call (status and its message)."""


class HubClient:
    def __init__(self, env: HubEnv, proxy_url: str, timeout: float = 30.0):
        if not proxy_url:
            raise ValueError("IBExtension.hub_url is not set: the service needs the hub's "
                             "proxy URL to reach candidates' servers (`ib hub` sets it).")
        self.env = env
        self.proxy_url = proxy_url.rstrip("/")
        self.api = httpx.AsyncClient(base_url=env.api_url.rstrip("/"), timeout=timeout,
                                     headers={"Authorization": f"token {env.api_token}"})
        self.proxy = httpx.AsyncClient(base_url=self.proxy_url, timeout=timeout,
                                       follow_redirects=False)

    def is_own_token(self, presented: str) -> bool:
        from secrets import compare_digest

        return compare_digest(presented, self.env.api_token)

    async def close(self) -> None:
        await self.api.aclose()
        await self.proxy.aclose()

    async def _call(self, method: str, path: str, ok=(200, 201, 202, 204), **kw) -> httpx.Response:
        r = await self.api.request(method, path, **kw)
        if r.status_code not in ok:
            raise HubError(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r

    # ---- users and servers ---------------------------------------------------------
    async def server(self, user: str) -> dict[str, Any] | None:
        """The user's default server model, or None (no such user, or not running)."""
        r = await self._call("GET", f"/users/{quote(user)}", ok=(200, 404))
        if r.status_code == 404:
            return None
        return (r.json().get("servers") or {}).get("")

    async def stop_server(self, user: str) -> None:
        """Ask the hub to stop the user's server (it keeps the user and the home)."""
        await self._call("DELETE", f"/users/{quote(user)}/server", ok=(202, 204, 400, 404))

    async def delete_user(self, user: str) -> bool:
        """Delete the hub user (the hub's authenticator removes its system user and home).
        False when the hub asks to wait (its server is still stopping)."""
        r = await self._call("DELETE", f"/users/{quote(user)}", ok=(204, 400, 404))
        return r.status_code != 400

    # ---- a token that reaches only one server --------------------------------------
    async def server_token(self, user: str, expires_in: int = 300) -> tuple[str, str]:
        """(token id, token) with the single scope `access:servers!server=<user>/`."""
        r = await self._call("POST", f"/users/{quote(user)}/tokens", json={
            "scopes": [f"access:servers!server={user}/"], "expires_in": expires_in,
            "note": "interview-buddy: read the final notebook"})
        body = r.json()
        return body["id"], body["token"]

    async def revoke_token(self, user: str, token_id: str) -> None:
        await self._call("DELETE", f"/users/{quote(user)}/tokens/{quote(token_id)}",
                         ok=(204, 404))

    async def server_get(self, user: str, path: str, token: str, **params) -> httpx.Response:
        """GET <hub>/user/<user>/<path> through the proxy, as that token."""
        return await self.proxy.get(f"/user/{quote(user)}/{path.lstrip('/')}", params=params,
                                    headers={"Authorization": f"token {token}"})
