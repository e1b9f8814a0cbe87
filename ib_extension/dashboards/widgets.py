"""Two small anywidgets the plain ipywidgets cannot do: a live conversation that keeps
the reader's scroll position, and a copy-to-clipboard box. Their front-end code is in
the sibling .js/.css files; every text is put into the page with `textContent`, never
as HTML, so a message cannot inject markup or script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

HERE = Path(__file__).parent
MESSAGE_FIELDS = ("id", "role", "content", "status", "created_at", "prompt_tokens",
                  "completion_tokens", "latency_ms")


class Conversation(anywidget.AnyWidget):
    """One session's messages. New and finished messages sync as state; streamed reply
    text goes as small custom messages, so a long conversation is not re-sent per token."""

    _esm = HERE / "conversation.js"
    _css = HERE / "widgets.css"
    session_id = traitlets.Unicode("").tag(sync=True)
    messages = traitlets.List(traitlets.Dict()).tag(sync=True)
    empty_text = traitlets.Unicode("No messages yet.").tag(sync=True)

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self._by_id: dict[str, dict] = {}

    def show(self, session_id: str, messages: list[dict]) -> None:
        """Switch to another session's conversation."""
        self._by_id = {}
        for m in messages:
            self._by_id[m["id"]] = _slim(m)
        self.session_id = session_id
        self._sync()

    def merge(self, messages: list[dict]) -> None:
        """Add messages read from the API; what the feed already delivered stays."""
        for m in messages:
            known = self._by_id.get(m["id"])
            if known is None or (known.get("status") == "streaming" and (
                    m.get("status") != "streaming"
                    or len(m.get("content") or "") >= len(known.get("content") or ""))):
                self._by_id[m["id"]] = _slim(m)
        self._sync()

    def upsert(self, message: dict) -> None:
        self._by_id[message["id"]] = _slim(message)
        self._sync()

    def delta(self, message_id: str, text: str) -> None:
        known = self._by_id.get(message_id)
        if known is None:  # the reply's first delta came before its message item
            known = self._by_id[message_id] = {"id": message_id, "role": "assistant",
                                               "content": "", "status": "streaming"}
            self._sync()
        known["content"] = (known.get("content") or "") + text
        self.send({"type": "delta", "id": message_id, "text": text})

    def text_of(self, message_id: str) -> str:
        return (self._by_id.get(message_id) or {}).get("content") or ""

    def _sync(self) -> None:
        ordered = sorted(self._by_id.values(), key=lambda m: (m.get("created_at") or "~", m["id"]))
        self.messages = [dict(m) for m in ordered]


def _slim(message: dict) -> dict:
    return {k: message.get(k) for k in MESSAGE_FIELDS}


class CopyBox(anywidget.AnyWidget):
    """Text shown as code with a Copy button beside it."""

    _esm = HERE / "copy.js"
    _css = HERE / "widgets.css"
    text = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
