"""Per-session request rate limit: a sliding window over the session clock."""

from __future__ import annotations

from collections import defaultdict, deque


class SlidingWindow:
    def __init__(self, limit: int, window_seconds: float = 60.0):
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, key: str, now: float) -> float | None:
        """Count a request; None if allowed, else the seconds to wait before the next."""
        if self.limit <= 0:
            return None
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        return None
