"""The live change feed: an in-memory, cursor-addressed log that long-polls wake on.

Every change the service makes (a session's new state, a message, a streamed delta, an
event) is published here with a rising `seq`. Readers keep their cursor and ask for
what came after it; the window is bounded, and a reader that fell out of it — or whose
`epoch` is from before a restart — is told to `reset` (re-read, then follow).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

Item = dict[str, Any]
Predicate = Callable[[Item], bool]


class Feed:
    def __init__(self, window: int = 20_000):
        self.epoch = secrets.token_hex(6)
        self._items: deque[Item] = deque(maxlen=window)
        self._seq = 0
        self._changed = asyncio.Event()

    @property
    def cursor(self) -> int:
        return self._seq

    def publish(self, session_id: str, kind: str, data: dict[str, Any] | BaseModel, *,
                audience: str = "all") -> int:
        """audience "interviewer" keeps an item out of candidate feeds. A model (a view:
        a snapshot, never changed after) is dumped when the item is first read: most
        items are never read, and their dump was a tenth of a chat turn's CPU."""
        self._seq += 1
        self._items.append(
            {"seq": self._seq, "session_id": session_id, "kind": kind, "data": data,
             "audience": audience}
        )
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return self._seq

    def since(self, cursor: int, keep: Predicate) -> tuple[list[Item], bool]:
        """Items after `cursor` that `keep` admits, and whether the reader must reset."""
        oldest = self._items[0]["seq"] if self._items else self._seq + 1
        reset = cursor > self._seq or cursor < oldest - 1
        if reset:
            return [], True
        # Walk back from the newest: a poll costs what is new, not the whole window.
        items = []
        for it in reversed(self._items):
            if it["seq"] <= cursor:
                break
            if keep(it):
                items.append(_public(it))
        items.reverse()
        return items, False

    async def wait(self, cursor: int, timeout: float, keep: Predicate) -> tuple[list[Item], bool]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            items, reset = self.since(cursor, keep)
            if items or reset:
                return items, reset
            # Items for other readers move the cursor on; skip past them.
            cursor = self._seq
            remaining = deadline - loop.time()
            if remaining <= 0:
                return [], False
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                return [], False


def _public(item: Item) -> Item:
    data = item["data"]
    if isinstance(data, BaseModel):
        item["data"] = data = data.model_dump()
    return {"seq": item["seq"], "session_id": item["session_id"], "kind": item["kind"],
            "data": data}
