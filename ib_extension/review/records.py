"""Reading a session record: the shape check and the small accessors every review tool uses.

A session record is ``{"session", "messages", "events", "final_notebook", "grade",
"challenge"}`` with the shapes of docs/API.md, as GET /ib/api/sessions/{id}/record
returns it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
    """The conversation in time order; a question and its reply can share a start time,
    so the question goes first, then the service's numbering (an export keeps the order
    it was written in: the sort is stable)."""
    return sorted(
        record.get("messages") or [],
        key=lambda m: (parse_time(m["created_at"]), m["role"] != "user", m.get("seq") or 0),
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


def billed(message: dict) -> tuple[int, int]:
    """(prompt, completion) tokens the provider billed for a message, as the ledger
    counts them. The service writes them on the reply when it settles: its request's
    billed prompt and its completion. A question carries only the service's estimate
    made before the call, which the ledger never charges, so it counts nothing; a reply
    still streaming is not settled yet."""
    if message.get("role") != "assistant" or message.get("status") == "streaming":
        return 0, 0
    return message.get("prompt_tokens") or 0, message.get("completion_tokens") or 0


def billed_total(message: dict) -> int:
    return sum(billed(message))


# -- cells the product put into the candidate's notebook ------------------------------
# The candidate template (notebooks/candidate/interview.ipynb) marks its cells with
# metadata {"ib": {"role": ...}}; the panel cell only opens the chat panel.
PRODUCT_ROLES = ("panel",)
PANEL_TAG = "ib-panel"


def product_cell(cell: dict) -> bool:
    """Whether Interview Buddy, not the candidate, wrote this cell (the panel cell)."""
    meta = cell.get("metadata") or {}
    role = (meta.get("ib") or {}).get("role") if isinstance(meta.get("ib"), dict) else None
    return role in PRODUCT_ROLES or PANEL_TAG in (meta.get("tags") or [])


# -- the session's clock, as the service read it ------------------------------------
class SessionClock:
    """The service's time used, at any moment of a session, from its own readings.

    Every lifecycle event (and a time extension that reopened the session) carries
    ``time_used_seconds``, the service's clock at that moment, and says whether the
    clock runs after it (its ``status``); between two events the clock advances with
    the wall time only while it runs. The session's end is where the service's clock
    stopped: ``ended_at``, or for a live session the moment its view was read
    (started + used + paused, the service's own fields).
    """

    def __init__(self, record):
        session = record["session"]
        self.start = _stamp(session.get("started_at"))
        readings = []  # (when, used then, running after)
        for ev in events(record):
            payload = ev.get("payload") or {}
            kind = ev["type"]
            if kind.startswith("session.") and "status" in payload:
                running = payload["status"] == "active"
            elif kind == "time.extended" and payload.get("reopened"):
                running = True
            else:
                continue
            when = parse_time(ev["at"])
            if self.start is None and running:
                self.start = when
            used = payload.get("time_used_seconds")
            if used is None:  # data from before the events carried the clock
                used = self._used(readings, when)
            readings.append((when, float(used), running))
        self.readings = readings
        ended = _stamp(session.get("ended_at"))
        if ended is None and self.start is not None:
            ended = self.start + timedelta(seconds=(session.get("time_used_seconds") or 0)
                                           + (session.get("time_paused_seconds") or 0))
        self.end = ended
        self.used_total = float(session.get("time_used_seconds") or 0.0)

    @staticmethod
    def _used(readings, when: datetime) -> float:
        if not readings:
            return 0.0
        at, used, running = readings[-1]
        return used + ((when - at).total_seconds() if running else 0.0)

    def used_at(self, stamp: str | datetime) -> float:
        """Seconds of the time limit used by ``stamp`` (never past the session's end)."""
        when = stamp if isinstance(stamp, datetime) else parse_time(stamp)
        if self.end is not None and when >= self.end:
            return self.used_total
        return max(0.0, self._used([r for r in self.readings if r[0] <= when], when))

    def t(self, stamp: str | datetime) -> float:
        """Wall seconds since the session started (0 before it did)."""
        when = stamp if isinstance(stamp, datetime) else parse_time(stamp)
        return 0.0 if self.start is None else (when - self.start).total_seconds()

    @property
    def wall(self) -> float:
        """Wall seconds from the start to the end of the session."""
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())

    def spans(self) -> list[tuple[float, float, bool]]:
        """(from, to, running) in wall seconds since the start, covering the session."""
        if self.start is None:
            return []
        out, wall = [], self.wall
        points = [(self.t(at), running) for at, _, running in self.readings] or [(0.0, True)]
        for (a, running), (b, _) in zip(points, points[1:] + [(wall, False)], strict=True):
            a, b = max(0.0, min(a, wall)), max(0.0, min(b, wall))
            if b > a:
                out.append((a, b, running))
        return out


def _stamp(value: str | None) -> datetime | None:
    return parse_time(value) if value else None
