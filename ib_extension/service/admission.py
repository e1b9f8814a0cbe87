"""One session's way to the provider: a FIFO queue in front of its budget and its share
of provider calls.

A request goes in when it is first in line, the session has fewer than `max_in_flight`
calls running and the ledger admits it (its reservation is taken in the same step). It
waits otherwise, for at most a timeout, and gives its place up when one of its stop
events is set (the client went away, the session was paused, locked or ended). Every
change that can let a waiter in (a settle, a release, an extension) goes through
`settle`, `release` or `changed`, which admit waiters from the front of the line.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .budget import Ledger


class NotAdmitted(Exception):
    """Why a request did not get in: "budget" (the settled budget cannot hold it),
    "budget_wait" or "slots_wait" (it waited too long for one or the other), "stopped"."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


@dataclass(eq=False)
class _Waiter:
    key: str
    prompt: int
    wanted: int
    future: asyncio.Future


class Gate:
    def __init__(self, ledger: Ledger, max_in_flight: int):
        self.ledger = ledger
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._line: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        return len(self._line)

    async def enter(self, key: str, prompt: int, wanted: int, *, timeout: float,
                    stops: Iterable[asyncio.Event]) -> int:
        """Reserve `prompt` tokens plus the reply's cap under `key`; return the cap.

        Raises NotAdmitted. Once this returns, the caller must end with `settle` or
        `release`, on every path.
        """
        if not self._line:
            cap = self._try(key, prompt, wanted)
            if cap is not None:
                return cap
        elif self.ledger.admit(prompt, wanted).action == "refuse":
            raise NotAdmitted("budget")
        waiter = _Waiter(key, prompt, wanted, asyncio.get_running_loop().create_future())
        self._line.append(waiter)
        stops = list(stops)
        stop_waits = [asyncio.ensure_future(ev.wait()) for ev in stops]
        try:
            await asyncio.wait([waiter.future, *stop_waits], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._give_up(waiter)
            raise
        finally:
            for w in stop_waits:
                w.cancel()
        if waiter.future.done():
            return waiter.future.result()  # the cap, or NotAdmitted("budget")
        self._give_up(waiter)
        if any(ev.is_set() for ev in stops):
            raise NotAdmitted("stopped")
        raise NotAdmitted("slots_wait" if self.in_flight >= self.max_in_flight else "budget_wait")

    def settle(self, key: str, prompt: int, completion: int) -> tuple[int, int]:
        charged = self.ledger.settle(key, prompt, completion)
        self._leave()
        return charged

    def release(self, key: str) -> None:
        self.ledger.release(key)
        self._leave()

    def changed(self) -> None:
        """Let in, from the front of the line, every waiter that fits now."""
        while self._line:
            waiter = self._line[0]
            if waiter.future.done():
                self._line.popleft()
                continue
            if self.ledger.admit(waiter.prompt, waiter.wanted).action == "refuse":
                self._line.popleft()
                waiter.future.set_exception(NotAdmitted("budget"))
                continue
            cap = self._try(waiter.key, waiter.prompt, waiter.wanted)
            if cap is None:
                return  # first in line still waits, and so does everyone behind it
            self._line.popleft()
            waiter.future.set_result(cap)

    def _try(self, key: str, prompt: int, wanted: int) -> int | None:
        decision = self.ledger.admit(prompt, wanted)
        if decision.action == "refuse":
            raise NotAdmitted("budget")
        if decision.action == "wait" or self.in_flight >= self.max_in_flight:
            return None
        self.ledger.reserve(key, prompt + decision.cap)
        self.in_flight += 1
        return decision.cap

    def _leave(self) -> None:
        self.in_flight -= 1
        self.changed()

    def _give_up(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled() \
                and waiter.future.exception() is None:
            self.release(waiter.key)  # let in at the moment it stopped waiting: give it back
            return
        waiter.future.cancel()
        if waiter in self._line:
            self._line.remove(waiter)
        self.changed()
