"""Idempotent session creation: a `POST /ib/api/sessions` that carries an
`Idempotency-Key` header gets the same answer however often it is sent (a double click,
a retry after a lost response); the same key with a different request is refused.

Keys live in memory for an hour (a restart forgets them): long enough for any retry,
short enough that the candidate token kept for the replay does not linger.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass

from ..api.errors import IBError

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces: a UUID fits
TTL_SECONDS = 3600.0
MAX_KEYS = 10_000


@dataclass(frozen=True)
class Remembered:
    fingerprint: str
    session_id: str
    token: str
    at: float


def fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Idempotency:
    def __init__(self, ttl: float = TTL_SECONDS, max_keys: int = MAX_KEYS):
        self.ttl, self.max_keys = ttl, max_keys
        self.keys: OrderedDict[str, Remembered] = OrderedDict()

    @staticmethod
    def check(key: str) -> None:
        if not KEY.fullmatch(key):
            raise IBError("invalid_request", f"The {HEADER} header must be 1 to 255 printable "
                          "characters without spaces (a UUID, say).", param=HEADER)

    def recall(self, key: str, body: dict, now: float) -> Remembered | None:
        """What this key created before, or None; a conflict if it came with another body."""
        self._forget_old(now)
        found = self.keys.get(key)
        if found is not None and found.fingerprint != fingerprint(body):
            raise IBError("conflict", f"This {HEADER} was already used to create session "
                          f"{found.session_id} with different details; send a new key for a "
                          "new session.", param=HEADER)
        return found

    def remember(self, key: str, body: dict, session_id: str, token: str, now: float) -> None:
        self.keys[key] = Remembered(fingerprint(body), session_id, token, now)
        while len(self.keys) > self.max_keys:
            self.keys.popitem(last=False)

    def _forget_old(self, now: float) -> None:
        while self.keys:
            key, oldest = next(iter(self.keys.items()))
            if now - oldest.at < self.ttl:
                return
            del self.keys[key]
