"""Reading a session record: the shape check and the small accessors every review tool uses.

A session record is ``{"session", "messages", "events", "final_notebook", "grade",
"challenge"}`` with the shapes of docs/API.md, as GET /ib/api/sessions/{id}/record
returns it.
"""

from __future__ import annotations

from datetime import datetime

from ..api import events as catalogue


def check_record(record) -> None:
    """Raise ValueError naming the first part of ``record`` that is not a session record."""
    if not isinstance(record, dict):
        raise ValueError(f"a session record must be a dict, got {type(record).__name__}")
    session = record.get("session")
    if not isinstance(session, dict) or not session.get("id"):
        raise ValueError("a session record needs 'session': a Session dict with an 'id'")
    for key, needed in (("messages", ("id", "role", "created_at")), ("events", ("type", "at"))):
        items = record.get(key) or []
        if not isinstance(items, list):
            raise ValueError(
                f"session record {session['id']}: '{key}' must be a list, "
                f"got {type(items).__name__}"
            )
        for item in items:
            missing = [k for k in needed if not isinstance(item, dict) or k not in item]
            if missing:
                raise ValueError(
                    f"session record {session['id']}: an item of '{key}' lacks "
                    f"{', '.join(missing)}: {str(item)[:80]}"
                )


def parse_time(stamp: str) -> datetime:
    """ISO 8601 UTC (``...Z``) -> aware datetime; Python 3.10 does not read the ``Z``."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError) as e:
        raise ValueError(f"not an ISO 8601 timestamp: {stamp!r}") from e


def messages(record) -> list[dict]:
    """The conversation in time order; a question and its reply share a start time, so
    the question goes first."""
    return sorted(
        record.get("messages") or [],
        key=lambda m: (parse_time(m["created_at"]), m["role"] != "user", m["id"]),
    )


def events(record) -> list[dict]:
    return sorted(record.get("events") or [], key=lambda e: (parse_time(e["at"]), e.get("id") or 0))


def challenge(record) -> dict:
    return record.get("challenge") or record["session"].get("challenge") or {}


def final_notebook(record) -> dict | None:
    """The submitted notebook; else the one in the last submit event; else the one the
    service captured from the workspace at the end (on JupyterHub); else the last activity
    snapshot that carried one (a session ended without a submit)."""
    return record.get("final_notebook") or catalogue.final_notebook(events(record))


def billed(message: dict) -> int:
    """The tokens a message accounts for: a question the whole prompt of its request, a
    reply its completion. (The service also copies the prompt onto the reply; counting
    it there too would count it twice.)"""
    key = "prompt_tokens" if message["role"] == "user" else "completion_tokens"
    return message.get(key) or 0
