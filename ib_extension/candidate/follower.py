"""The candidate's server follows its session, so that the whole workspace keeps to the
service's clock, with or without a browser open:

- paused: running code is interrupted (the browser also covers the notebook);
- ended (time up, the interviewer's End, a submission): the workspace waits a moment for
  the browser's last save, then refuses saves and kernel starts, stops every kernel and
  terminal, and hands the saved notebook in (POST /ib/api/me/hand-in, the service's one
  call for a final notebook after an end) unless a submission already did.

The service stays the authority: this is the workspace doing its honest best, and a
candidate who controls this server could stop it (the service then grades the last
snapshot it holds).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from pathlib import Path
from typing import Any

import httpx
from tornado import web

from ..api.models import ENDED
from .server import Upstream

log = logging.getLogger("ib_extension.candidate.follower")

FEED_TIMEOUT = 25  # seconds one long-poll may wait
RETRY_SECONDS = 2.0
ENDED_MESSAGE = ("The interview has ended and your work was handed in: this workspace is "
                 "read-only now.")


class Guard:
    """What the candidate's server refuses once the interview has ended."""

    def __init__(self) -> None:
        self.closed = False

    def pre_save(self, model: Any = None, path: str = "", **_: Any) -> None:
        if self.closed:  # a contents-manager pre-save hook may refuse with an HTTPError
            raise web.HTTPError(403, ENDED_MESSAGE, reason="Interview ended")

    def wrap_kernel_starts(self, kernel_manager: Any) -> None:
        start = kernel_manager.start_kernel

        async def start_kernel(*args: Any, **kwargs: Any) -> Any:
            if self.closed:
                raise web.HTTPError(403, "The interview has ended: no code runs here any more.",
                                    reason="Interview ended")
            started = start(*args, **kwargs)
            return await started if inspect.isawaitable(started) else started

        kernel_manager.start_kernel = start_kernel


class Follower:
    def __init__(self, upstream: Upstream, serverapp: Any, notebook: str,
                 final_save_seconds: float, guard: Guard):
        self.upstream = upstream
        self.serverapp = serverapp
        self.notebook = notebook
        self.final_save_seconds = final_save_seconds
        self.guard = guard
        self.state: dict[str, Any] | None = None
        self.saved_after_end = asyncio.Event()
        self.closing: asyncio.Task | None = None

    # ---- what the post-save hook tells us ------------------------------------------------
    def saved(self, path: str) -> None:
        if self.closing is not None and Path(path).name == Path(self.notebook).name:
            self.saved_after_end.set()

    # ---- following ----------------------------------------------------------------------------
    async def run(self) -> None:
        cursor = epoch = None
        while True:
            try:
                if cursor is None:
                    head = await self._get("/ib/api/me/feed")
                    cursor, epoch = head["cursor"], head["epoch"]
                    await self.on_state(await self._get("/ib/api/me"))
                page = await self._get("/ib/api/me/feed", cursor=cursor, epoch=epoch,
                                       timeout=FEED_TIMEOUT)
                if page["reset"]:
                    cursor = None
                    continue
                cursor = page["cursor"]
                for item in page["items"]:
                    if item["kind"] == "session":
                        await self.on_state(item["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 (the follower must outlive any hiccup)
                log.info("following the session: %s; retrying", e)
                cursor = None
                await asyncio.sleep(RETRY_SECONDS)

    async def _get(self, path: str, **params: Any) -> Any:
        r = await self.upstream.http.get(path, params=params or None)
        r.raise_for_status()
        return r.json()

    async def on_state(self, state: dict[str, Any]) -> None:
        before, self.state = self.state, state
        if state["status"] == "paused" and (before is None or before["status"] != "paused"):
            await self.interrupt_kernels()
        if state["status"] in ENDED and self.closing is None:
            self.closing = asyncio.ensure_future(self.close(state))

    # ---- effects ------------------------------------------------------------------------------
    async def interrupt_kernels(self) -> None:
        km = self.serverapp.kernel_manager
        for kernel_id in list(km.list_kernel_ids()):
            try:
                done = km.interrupt_kernel(kernel_id)
                if inspect.isawaitable(done):
                    await done
            except Exception as e:  # noqa: BLE001 (a kernel still starting cannot be interrupted)
                log.info("could not interrupt kernel %s: %s", kernel_id, e)
        log.info("session paused: running code interrupted")

    async def close(self, state: dict[str, Any]) -> None:
        """The end: the browser's last save, then read-only, no code, and the hand-in."""
        if state.get("handed_in") is None:
            try:  # the browser saves what is on screen as soon as it sees the end
                await asyncio.wait_for(self.saved_after_end.wait(), self.final_save_seconds)
            except asyncio.TimeoutError:
                log.info("no save after the end within %.0f s: handing in the last saved "
                         "notebook", self.final_save_seconds)
        self.guard.closed = True
        await self.stop_code()
        if state.get("handed_in") is None:
            await self.hand_in()

    async def stop_code(self) -> None:
        try:
            await self.serverapp.kernel_manager.shutdown_all()
        except Exception as e:  # noqa: BLE001
            log.warning("stopping the kernels failed: %s", e)
        terminals = self.serverapp.web_app.settings.get("terminal_manager")
        if terminals is not None:
            try:
                await terminals.terminate_all()
            except Exception as e:  # noqa: BLE001
                log.warning("stopping the terminals failed: %s", e)

    async def hand_in(self) -> None:
        path = Path(self.serverapp.root_dir) / self.notebook
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            log.warning("nothing to hand in: %s", e)
            return
        try:
            r = await self.upstream.post_json("/ib/api/me/hand-in",
                                              {"notebook": notebook, "path": self.notebook})
        except httpx.HTTPError as e:
            log.warning("the notebook could not be handed in: %s", e)
            return
        if r.status_code >= 400:
            log.info("the service did not take the notebook: %s", r.text[:300])
        else:
            log.info("notebook handed in: %s", self.notebook)
