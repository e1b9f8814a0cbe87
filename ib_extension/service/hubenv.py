"""The ib service as a JupyterHub-managed service: what the hub hands it, read once.

The hub starts the service with JUPYTERHUB_* variables (the standard managed-service
environment) and `ib hub` adds IB_HUB_URL. This module is the only reader of them, and
the hub API token is taken out of os.environ at the first read, so that no kernel the
service starts (the dashboards') inherits it. `ib serve` moves the token to a 0600 file
before it becomes the server (cli/serve.py) and names the file in IB_HUB_TOKEN_FILE.
Everything else asks `hub_env()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

# The hub's proxy as the service and the candidates' servers reach it (set by `ib hub`).
HUB_URL_ENV = "IB_HUB_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
HUB_TOKEN_FILE_ENV = "IB_HUB_TOKEN_FILE"


@dataclass(frozen=True)
class HubEnv:
    service_name: str
    service_url: str  # where the service listens, e.g. http://127.0.0.1:8003
    prefix: str  # its path on the hub, e.g. /services/interview-buddy/
    api_url: str  # the hub's REST API, e.g. http://127.0.0.1:8002/hub/api
    hub_prefix: str  # /hub/
    public_hub_url: str  # https://host/hub/ when the hub knows its public URL, else ''
    hub_url: str  # $IB_HUB_URL: the proxy, e.g. http://127.0.0.1:8000 ('' if unset)
    api_token: str = field(repr=False)

    @property
    def ip(self) -> str:
        return urlparse(self.service_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlparse(self.service_url).port or 80

    def url_via(self, proxy_url: str) -> str:
        """This service's URL through the hub's proxy at `proxy_url` (its own URL when
        there is none)."""
        return (proxy_url or self.service_url).rstrip("/") + self.prefix.rstrip("/")


_UNREAD = object()
_cached: object = _UNREAD


def hub_env() -> HubEnv | None:
    """The managed-service environment, or None when the service runs on its own."""
    global _cached
    if _cached is _UNREAD:
        _cached = _read(os.environ)
    return _cached  # type: ignore[return-value]


def _read(environ) -> HubEnv | None:
    name = environ.get("JUPYTERHUB_SERVICE_NAME")
    if not name:
        return None
    token = environ.pop(TOKEN_ENV, "") or _read_file(environ.get(HUB_TOKEN_FILE_ENV))
    if not token or not environ.get("JUPYTERHUB_SERVICE_URL"):
        raise RuntimeError(f"The hub started service {name!r} without an API token or a URL: "
                           "register it in c.JupyterHub.services with a 'url' (`ib hub` does).")
    base = environ.get("JUPYTERHUB_BASE_URL") or "/"
    return HubEnv(
        service_name=name, service_url=environ["JUPYTERHUB_SERVICE_URL"],
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{name}/",
        api_url=environ.get("JUPYTERHUB_API_URL") or "http://127.0.0.1:8081/hub/api",
        hub_prefix=base.rstrip("/") + "/hub/",
        public_hub_url=environ.get("JUPYTERHUB_PUBLIC_HUB_URL", ""),
        hub_url=environ.get(HUB_URL_ENV, ""), api_token=token)


def _read_file(path: str | None) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""
