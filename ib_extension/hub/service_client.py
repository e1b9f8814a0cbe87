"""The hub's two calls to the ib service (api/hub.py): redeem a candidate link, prepare a
candidate's server. The hub authenticates with the service's own hub API token, which
only the two of them hold."""

from __future__ import annotations

from typing import Any

import httpx

from ..api import hub as contract


class ServiceRefusal(Exception):
    """The service said no, with its error code and sentence (or could not be reached)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ServiceClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.url, timeout=timeout,
                                      headers={"Authorization": f"token {token}"})

    async def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            r = await self.http.post(route, json=body)
        except httpx.HTTPError as e:
            raise ServiceRefusal(503, "service_unreachable",
                                 "The interview service cannot be reached right now; please "
                                 "try again in a minute.") from e
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                raise ServiceRefusal(r.status_code, err["code"], err["message"])
            except (ValueError, KeyError, TypeError):
                raise ServiceRefusal(r.status_code, "http_error",
                                     f"The interview service answered HTTP {r.status_code}.") from None
        return r.json()

    async def redeem(self, code: str, browser: str) -> dict[str, Any]:
        return await self._post(contract.REDEEM_ROUTE, {"code": code, "browser": browser})

    async def prepare_spawn(self, hub_user: str) -> dict[str, Any]:
        return await self._post(contract.SPAWN_ROUTE, {"hub_user": hub_user})
