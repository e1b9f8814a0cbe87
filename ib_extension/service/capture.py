"""The end of an interview: read the candidate's notebook from their own server, through
the hub, whether or not they pressed Submit or saved.

`capture_notebook()` is the whole of it: a token that reaches only that user's server
(`access:servers!server=<user>/`, short-lived, revoked afterwards), the server's
contents API through the hub's proxy, and a wait for the save the candidate's panel makes
when it sees the session end (that save is what brings unsaved edits to the server). If
the browser is gone, the wait ends after `grace_seconds` and the last saved file is taken.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import nbformat

from .hubclient import HubClient, HubError

log = logging.getLogger("ib_extension.service.capture")


@dataclass(frozen=True)
class Captured:
    notebook: dict[str, Any] | None  # None: nothing could be read (see `problem`)
    path: str
    last_modified: str | None = None
    saved_after_end: bool = False
    problem: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"path": self.path, "notebook": self.notebook, "last_modified": self.last_modified,
                "saved_after_end": self.saved_after_end, "problem": self.problem}


async def capture_notebook(hub: HubClient, hub_user: str, path: str, *, ended_at: float,
                           grace_seconds: float, poll_seconds: float = 0.25) -> Captured:
    """The notebook at `path` in `hub_user`'s workspace, as their server holds it after the
    end (`ended_at`, epoch seconds): waits up to `grace_seconds` for a save made after it."""
    if await hub.server(hub_user) is None:
        return Captured(None, path, problem="the candidate's server was not running")
    try:
        token_id, token = await hub.server_token(hub_user, expires_in=int(grace_seconds) + 120)
    except (HubError, httpx.HTTPError) as e:
        return Captured(None, path, problem=f"the hub gave no token to read it: {e}")
    api = f"api/contents/{quote(path)}"
    try:
        deadline = time.monotonic() + grace_seconds
        modified = None
        while True:
            r = await hub.server_get(hub_user, api, token, content="0")
            if r.status_code != 200:
                return Captured(None, path, problem=f"the server answered HTTP {r.status_code} "
                                                    f"for {path}")
            modified = r.json().get("last_modified")
            if _epoch(modified) >= ended_at or time.monotonic() >= deadline:
                break
            await asyncio.sleep(poll_seconds)
        r = await hub.server_get(hub_user, api, token, content="1", type="notebook")
        if r.status_code != 200:
            return Captured(None, path, problem=f"the server answered HTTP {r.status_code}")
        model = r.json()
        # As written on disk, without the transient marks the contents model carries.
        notebook = json.loads(nbformat.writes(nbformat.from_dict(model["content"])))
        return Captured(notebook, path, model.get("last_modified"),
                        saved_after_end=_epoch(model.get("last_modified")) >= ended_at)
    except (httpx.HTTPError, ValueError, KeyError) as e:
        log.warning("capture of %s from %s failed: %s", path, hub_user, e)
        return Captured(None, path, problem=f"reading it failed: {type(e).__name__}")
    finally:
        try:
            await hub.revoke_token(hub_user, token_id)
        except (HubError, httpx.HTTPError) as e:
            log.warning("could not revoke the capture token of %s: %s", hub_user, e)


def _epoch(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
