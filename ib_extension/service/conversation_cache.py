"""What the service keeps of a conversation between its turns.

Each request resends the whole history, so each message's tokens (for the prompt
estimate) and JSON (for the provider's request) are made once, when the message is first
sent, and reused while the client keeps sending it: a turn at 100k tokens of history
costs what a short one does, not 17 ms of counting and a megabyte of encoding.

A message is matched first against the one sent at its place last time (an equality
test, a memory compare for the long texts); one that differs (a client that trimmed or
edited its history) is looked up among last time's by its shape, then compared. Only the last
request's messages are kept, so the memory is one conversation's.
"""

from __future__ import annotations

from typing import Any

from ..api import fast_json
from .tokens import REPLY_PRIMING_TOKENS, count_message_tokens


class _Message:
    __slots__ = ("message", "tokens", "json")

    def __init__(self, message: dict[str, Any]):
        self.message = message
        self.tokens: int | None = None
        self.json: bytes | None = None


class ConversationCache:
    def __init__(self, model: str):
        self.model = model
        self._last: list[_Message] = []
        self._last_sent: list[dict[str, Any]] | None = None  # the list `_last` matched

    def count(self, messages: list[dict[str, Any]], *, keep: bool = True) -> int:
        """`count_message_tokens(messages, model)`, counting only messages not seen before;
        `keep=False` counts without making these the conversation's messages."""
        known = self._match(messages)
        for m in known:
            if m.tokens is None:
                m.tokens = count_message_tokens([m.message], self.model) - REPLY_PRIMING_TOKENS
        if keep:
            self._last, self._last_sent = known, messages
        return REPLY_PRIMING_TOKENS + sum(m.tokens for m in known)  # type: ignore[misc]

    def json(self, messages: list[dict[str, Any]]) -> bytes:
        """`messages` as a JSON array, encoding only messages not seen before (a turn's
        estimate has just matched them: that match is used again)."""
        known = self._last if messages is self._last_sent else self._match(messages)
        for m in known:
            if m.json is None:
                m.json = fast_json.dumps(m.message)
        self._last, self._last_sent = known, messages
        return b"[" + b",".join(m.json for m in known) + b"]"  # type: ignore[misc]

    def _match(self, messages: list[dict[str, Any]]) -> list[_Message]:
        last, by_shape = self._last, None
        known = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise TypeError(f"messages must be dicts, got {type(message).__name__}")
            if i < len(last) and last[i].message == message:
                known.append(last[i])
                continue
            if by_shape is None:  # built on the first miss only
                by_shape = {}
                for m in last:
                    by_shape.setdefault(_shape(m.message), []).append(m)
            same = (m for m in by_shape.get(_shape(message), ()) if m.message == message)
            known.append(next(same, None) or _Message(message))
        return known


def _shape(message: dict[str, Any]) -> tuple:
    """What equal messages share, cheap to hash however long their texts: hashing a text
    reads all of it. (The request's models give each field one type, so `==` does not
    meet 1 == True.)"""
    return tuple((k, len(v) if isinstance(v, str | list | dict) else v)
                 for k, v in message.items())
