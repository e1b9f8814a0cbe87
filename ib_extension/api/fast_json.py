"""JSON on the chat path, where a long conversation is 400 KB each turn: pydantic-core's
parser and writer (Rust; pydantic is a dependency already) take a sixth and a third of
the standard library's time. Whatever pydantic-core's parser refuses goes to the standard
library's, so what is accepted and how an error reads stay `json`'s: `json.loads` also
takes a byte-order mark, escaped lone surrogates (which `requests.parse` then names by
field) and deeper nesting (which `requests.parse_json` refuses with its own sentence)."""

from __future__ import annotations

import json
from typing import Any

import pydantic_core


def loads(data: bytes | bytearray | str) -> Any:
    try:
        return pydantic_core.from_json(data)
    except ValueError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (no ASCII escapes: every reader of an HTTP body takes UTF-8).
    A string UTF-8 cannot hold (a lone surrogate) is written escaped, as `json` does."""
    try:
        return pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError:
        return json.dumps(value, separators=(",", ":")).encode()
