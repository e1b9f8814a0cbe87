"""Follow the service's change feed on the dashboard kernel's own asyncio loop.

Voilà's updates from background threads are unreliable (voila issue 431), so the
follower is a task on the loop the kernel already runs: each long-poll waits on the
service, and widget updates happen between cells like any other kernel work.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..api.client import IBClientError

log = logging.getLogger(__name__)

Items = list[dict[str, Any]]
STRICT_ENV = "IB_DASHBOARDS_STRICT"


def strict() -> bool:
    """Notebook tests set IB_DASHBOARDS_STRICT=1: a page that cannot read the service
    then raises (failing the cell) instead of showing the problem as a sentence."""
    return os.environ.get(STRICT_ENV) == "1"


class FeedFollower:
    """Long-polls `/ib/api/feed` from a cursor and hands each batch of items over.

    `on_items(items)` gets every batch in order; `on_reset()` (a coroutine) must re-read
    the state it shows, because items were missed (service restarted or the reader fell
    out of the window); `on_status(text)` hears about lost and regained contact.
    """

    def __init__(self, client, on_items: Callable[[Items], None],
                 on_reset: Callable[[], Awaitable[None]],
                 on_status: Callable[[str], None] = lambda text: None, *,
                 session_id: str | None = None, poll_timeout: int = 25,
                 max_backoff: float = 10.0):
        self.client = client
        self.on_items = on_items
        self.on_reset = on_reset
        self.on_status = on_status
        self.session_id = session_id
        self.poll_timeout = poll_timeout
        self.max_backoff = max_backoff
        self.cursor: int | None = None
        self.epoch: str | None = None
        self.task: asyncio.Task | None = None
        self._stale = False  # a reset was announced but the state is not re-read yet

    async def mark(self) -> None:
        """Take the current cursor: call it before reading the state you will follow."""
        head = await self.client.feed(session_id=self.session_id)
        self.cursor, self.epoch = head["cursor"], head["epoch"]

    def start(self) -> asyncio.Task:
        if self.cursor is None:
            raise RuntimeError("call mark() (then read your state) before start()")
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self.task

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def poll_once(self) -> Items:
        """One long-poll; returns the items it delivered (tests drive it step by step)."""
        if self._stale:  # the last re-read failed: try it again before following on
            await self._reset()
            return []
        page = await self.client.feed(self.cursor, epoch=self.epoch, timeout=self.poll_timeout,
                                      session_id=self.session_id)
        self.cursor, self.epoch = page["cursor"], page["epoch"]
        if page.get("reset"):
            self._stale = True
            await self._reset()
            return []
        items = page.get("items") or []
        if items:
            self.on_items(items)
        return items

    async def _reset(self) -> None:
        await self.on_reset()
        self._stale = False

    async def _run(self) -> None:
        backoff, lost = 1.0, False
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except (IBClientError, httpx.HTTPError) as e:
                lost = True
                self.on_status(f"Lost contact with the service ({_reason(e)}); "
                               f"retrying in {backoff:.0f} s.")
                await asyncio.sleep(backoff)  # back off from a service that is down
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except Exception:  # a bug in a view must not stop the live updates
                log.exception("dashboard feed handler failed")
                self.on_status("A dashboard update failed; see the server log.")
                continue
            if lost:
                lost, backoff = False, 1.0
                self.on_status("")


def _reason(e: Exception) -> str:
    if isinstance(e, IBClientError):
        return e.message
    return type(e).__name__


_running: set[asyncio.Task] = set()


def spawn(coro) -> asyncio.Task:
    """Run `coro` on the kernel's loop from a widget callback; keep a reference so the
    task is not garbage-collected mid-flight, and log what it raises."""
    task = asyncio.get_running_loop().create_task(coro)
    _running.add(task)

    def done(t: asyncio.Task) -> None:
        _running.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("dashboard task failed", exc_info=t.exception())

    task.add_done_callback(done)
    return task


async def every(seconds: float, fn: Callable[[], None]) -> None:
    """Call `fn` every `seconds` on this loop (local redraws such as a ticking clock)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            fn()
        except Exception:
            log.exception("dashboard tick failed")
