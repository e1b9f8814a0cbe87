"""Small anywidgets the plain ipywidgets cannot do: a live conversation that keeps the
reader's scroll position, a copy-to-clipboard box, one-click downloads and page keyboard
shortcuts. Their front-end code is in the sibling .js/.css files; every text is put into
the page with `textContent`, never as HTML, so a message cannot inject markup or script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

HERE = Path(__file__).parent
MESSAGE_FIELDS = ("id", "seq", "role", "content", "status", "created_at", "prompt_tokens",
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
        # The service numbers messages as it logs them: a question and its reply can share a
        # millisecond. A reply known only from its first words (no number yet) goes last.
        ordered = sorted(self._by_id.values(),
                         key=lambda m: (m.get("seq") is None, m.get("seq") or 0, m["id"]))
        self.messages = [dict(m) for m in ordered]


def _slim(message: dict) -> dict:
    return {k: message.get(k) for k in MESSAGE_FIELDS}


class CopyBox(anywidget.AnyWidget):
    """Text shown as code with a Copy button beside it."""

    _esm = HERE / "copy.js"
    _css = HERE / "widgets.css"
    text = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)


class Downloads(anywidget.AnyWidget):
    """A button per format; a click builds that file in the kernel (`build(format)` gives
    (file name, MIME type, text)) and the browser saves it: one click, one file."""

    _esm = HERE / "downloads.js"
    _css = HERE / "widgets.css"
    formats = traitlets.List(traitlets.Unicode()).tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)  # "<whose> session as", before the format
    busy = traitlets.Unicode("").tag(sync=True)  # the format being built
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, build: Callable[[str], Awaitable[tuple[str, str, str]]], **kw: Any):
        super().__init__(**kw)
        self.build = build
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget, content: dict, _buffers) -> None:
        if content.get("type") == "build" and content.get("format") in self.formats:
            from .live import spawn

            spawn(self.deliver(content["format"]))

    async def deliver(self, fmt: str) -> str | None:
        """Build `fmt` and send it to the browser; returns the file name (None if it failed)."""
        self.busy, self.error = fmt, ""
        try:
            name, mime, text = await self.build(fmt)
        except Exception as e:  # shown beside the buttons; the page keeps working
            self.error = f"The {fmt} export failed: {getattr(e, 'message', None) or e}"
            return None
        finally:
            self.busy = ""
        self.send({"type": "file", "name": name, "mime": mime}, buffers=[text.encode("utf-8")])
        return name


class Keys(anywidget.AnyWidget):
    """Keyboard shortcuts for the page, listed where the widget is shown; `on_key(key)`
    hears each (never while the interviewer types in a field)."""

    _esm = HERE / "keys.js"
    _css = HERE / "widgets.css"
    # (KeyboardEvent.key, what the key is called, what it does)
    shortcuts = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)

    def __init__(self, on_key: Callable[[str], None], **kw: Any):
        super().__init__(**kw)
        self.on_key = on_key
        self.on_msg(lambda _w, content, _b: on_key(content["key"])
                    if content.get("type") == "key" else None)
