"""Refusals per session, bounded: the first few in a minute are stored one by one; the rest
are counted and stored as one summary when that minute is over.

A client looping on a refused request (thousands a second) would otherwise write an event
and a session row per request, flood the live feed and slow every interviewer view.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

KEEP_PER_WINDOW = 5
WINDOW_SECONDS = 60.0


@dataclass
class _Window:
    start: float
    kept: int = 0
    counted: Counter = field(default_factory=Counter)  # code -> refusals not stored


class RefusalCounter:
    def __init__(self, keep: int = KEEP_PER_WINDOW, window: float = WINDOW_SECONDS):
        self.keep = keep
        self.window = window
        self._windows: dict[str, _Window] = {}

    def record(self, session_id: str, code: str, now: float) -> bool:
        """Count a refusal; True when it should be stored as its own event. Take the
        session's ended window out with `ended` first, or its summary is lost."""
        w = self._windows.get(session_id)
        if w is None or now >= w.start + self.window:
            w = self._windows[session_id] = _Window(now)
        if w.kept < self.keep:
            w.kept += 1
            return True
        w.counted[code] += 1
        return False

    def ended(self, session_id: str, now: float) -> dict | None:
        """The summary of the session's window if it is over (taken out), else None."""
        w = self._windows.get(session_id)
        if w is None or now < w.start + self.window:
            return None
        del self._windows[session_id]
        return self._summary(w)

    def due(self, now: float, *, everything: bool = False) -> list[tuple[str, dict]]:
        """Summaries of the windows that are over (all of them when `everything`)."""
        out = []
        for sid, w in list(self._windows.items()):
            if everything or now >= w.start + self.window:
                del self._windows[sid]
                summary = self._summary(w)
                if summary:
                    out.append((sid, summary))
        return out

    def _summary(self, w: _Window) -> dict | None:
        if not w.counted:
            return None
        return {"count": sum(w.counted.values()), "codes": dict(w.counted),
                "since": w.start, "window_seconds": self.window}
