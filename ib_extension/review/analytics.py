"""Analytics of one interview, as pure functions over a session record (records.py).

Times in the results are seconds since the session started (``t``), so candidates can be
compared on one axis. Nothing here talks to the service (the caller fetches the record)
or draws (figures.py does, with plotly).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from ..api.events import interviewer_actions
from .records import billed, challenge, check_record, events, messages, parse_time

# Events a person at the dashboard caused; they are marked on the charts.
INTERVIEWER_ACTIONS = interviewer_actions()


class _Clock:
    """Seconds since the session started, and where the session's time ends."""

    def __init__(self, record, now: datetime | None):
        session = record["session"]
        self.start = _first_time(session.get("started_at"), _event_time(record, "session.started"))
        self.end = _first_time(
            session.get("ended_at"), session.get("submitted_at"), now
        ) or _latest_time(record)

    def t(self, stamp: str) -> float:
        if self.start is None:
            return 0.0
        return (parse_time(stamp) - self.start).total_seconds()

    @property
    def wall(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())


def _first_time(*stamps) -> datetime | None:
    for stamp in stamps:
        if isinstance(stamp, datetime):
            return stamp
        if stamp:
            return parse_time(stamp)
    return None


def _event_time(record, type_: str) -> str | None:
    return next((e["at"] for e in events(record) if e["type"] == type_), None)


def _latest_time(record) -> datetime | None:
    """A live session has no end yet: its last recorded moment stands in for now."""
    session = record["session"]
    stamps = [session.get("last_activity_at")] + [e["at"] for e in record.get("events") or []]
    stamps += [m.get("finished_at") or m["created_at"] for m in record.get("messages") or []]
    times = [parse_time(s) for s in stamps if s]
    return max(times) if times else None


def paused_spans(record, now: datetime | None = None) -> list[tuple[float, float]]:
    """(from, to) seconds of every pause, clipped to the session; a pause that was not
    resumed lasts until the session's end."""
    clock = _Clock(record, now)
    spans, paused_at = [], None
    for ev in events(record):
        if ev["type"] == "session.paused" and paused_at is None:
            paused_at = clock.t(ev["at"])
        elif ev["type"] == "session.resumed" and paused_at is not None:
            spans.append((paused_at, clock.t(ev["at"])))
            paused_at = None
    if paused_at is not None:
        spans.append((paused_at, clock.wall))
    clipped = [(max(0.0, a), min(clock.wall, b)) for a, b in spans]
    return [(a, b) for a, b in clipped if b > a]


# -- numbers --------------------------------------------------------------------------


def summary(record, now: datetime | None = None) -> dict:
    """One flat dict of the interview's numbers (flat so that it is one CSV row).

    ``now`` ends a live session's time; by default its last recorded moment does.
    Seconds are wall-clock from ``started_at``; ``time_used_seconds`` is the service's
    own count, kept as reported. The less obvious fields:

    - ``tokens_per_question``: tokens billed per question (its prompt and its reply);
    - ``ai_wait_seconds`` / ``ai_time_share``: time the AI spent replying, and its share
      of the active time;
    - ``budget_used_share``: tokens billed over the final budget (extensions included);
    - ``replies_incomplete``: replies cut off, failed or interrupted.
    """
    check_record(record)
    session, grade = record["session"], record.get("grade") or {}
    clock = _Clock(record, now)
    pauses = paused_spans(record, now)
    paused = sum(b - a for a, b in pauses)
    active = clock.wall - paused
    msgs = messages(record)
    user = [m for m in msgs if m["role"] == "user"]
    assistant = [m for m in msgs if m["role"] == "assistant"]
    prompt = sum(billed(m) for m in user)
    completion = sum(billed(m) for m in assistant)
    ai_wait = sum((m.get("latency_ms") or 0) / 1000 for m in assistant)
    evs = events(record)
    kinds = [e["type"] for e in evs]
    extra_tokens = sum(
        (e.get("payload") or {}).get("tokens") or 0 for e in evs if e["type"] == "tokens.extended"
    )
    extra_time = sum(
        (e.get("payload") or {}).get("seconds") or 0 for e in evs if e["type"] == "time.extended"
    )
    budget = session.get("token_budget")
    chal = challenge(record)
    return {
        "session_id": session["id"],
        "candidate_name": session.get("candidate_name"),
        "challenge_id": chal.get("id"),
        "challenge_title": chal.get("title"),
        "model": session.get("model"),
        "status": session.get("status"),
        "end_reason": session.get("end_reason"),
        "started_at": session.get("started_at"),
        "ended_at": session.get("ended_at"),
        "time_limit_seconds": session.get("time_limit_seconds"),
        "time_extended_seconds": extra_time,
        "time_used_seconds": session.get("time_used_seconds"),
        "wall_seconds": round(clock.wall, 3),
        "active_seconds": round(active, 3),
        "paused_seconds": round(paused, 3),
        "pauses": len(pauses),
        "messages_user": len(user),
        "messages_assistant": len(assistant),
        "replies_incomplete": sum(1 for m in assistant if m.get("status") != "complete"),
        "tokens_prompt": prompt,
        "tokens_completion": completion,
        "tokens_total": prompt + completion,
        "token_budget": budget,
        "tokens_extended": extra_tokens,
        "budget_used_share": _ratio(prompt + completion, budget),
        "tokens_per_question": _ratio(prompt + completion, len(user), digits=1),
        "first_question_after_seconds": round(clock.t(user[0]["created_at"]), 3) if user else None,
        "ai_wait_seconds": round(ai_wait, 3),
        "ai_time_share": _ratio(ai_wait, active),
        "refusals": kinds.count("refusal"),
        "warnings": kinds.count("warning"),
        "injection_flags": kinds.count("injection.suspected"),
        "score": grade.get("score"),
        "tests_passed": grade.get("passed"),
        "tests_total": grade.get("total"),
    }


def _ratio(part, whole, digits: int = 4):
    return round(part / whole, digits) if whole else None


def token_timeline(record, now: datetime | None = None) -> list[dict]:
    """Cumulative tokens and the budget in force, one row per change: a message's
    tokens (counted when it finished), a budget extension, an interviewer action."""
    check_record(record)
    clock = _Clock(record, now)
    evs = events(record)
    budget = (record["session"].get("token_budget") or 0) - sum(
        (e.get("payload") or {}).get("tokens") or 0 for e in evs if e["type"] == "tokens.extended"
    )
    changes = []  # (at, kind, tokens spent, label, budget added)
    for m in messages(record):
        tokens = billed(m)
        if tokens:
            changes.append((m.get("finished_at") or m["created_at"], "message", tokens, m["id"], 0))
    for e in evs:
        # A budget change counts whoever made it; other events only when a person did.
        if e["type"] == "tokens.extended" or (
            e["type"] in INTERVIEWER_ACTIONS and e.get("actor") == "interviewer"
        ):
            added = (
                (e.get("payload") or {}).get("tokens") or 0 if e["type"] == "tokens.extended" else 0
            )
            changes.append((e["at"], "action", 0, INTERVIEWER_ACTIONS[e["type"]], added))
    rows = [
        {
            "t": 0.0,
            "kind": "start",
            "tokens": 0,
            "budget": budget,
            "label": "start",
            "at": record["session"].get("started_at"),
        }
    ]
    used = 0
    for at, kind, tokens, label, added in sorted(changes, key=lambda c: parse_time(c[0])):
        used += tokens
        budget += added
        rows.append(
            {
                "t": round(clock.t(at), 3),
                "kind": kind,
                "tokens": used,
                "budget": budget,
                "label": label,
                "at": at,
            }
        )
    return rows


def message_timeline(record) -> list[dict]:
    """One row per message: when (``t``), how long the reply took, its tokens."""
    check_record(record)
    clock = _Clock(record, None)
    rows = []
    for m in messages(record):
        rows.append(
            {
                "id": m["id"],
                "role": m["role"],
                "t": round(clock.t(m["created_at"]), 3),
                "latency_seconds": (m.get("latency_ms") or 0) / 1000,
                "prompt_tokens": m.get("prompt_tokens") or 0,
                "completion_tokens": m.get("completion_tokens") or 0,
                "status": m.get("status"),
                "chars": len(m.get("content") or ""),
                "preview": _preview(m.get("content") or ""),
            }
        )
    return rows


def _preview(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def time_utilisation(record, now: datetime | None = None) -> list[dict]:
    """Segments of the session's time on two lanes: ``session`` (active / paused /
    unused up to the time limit) and ``ai`` (the AI writing a reply)."""
    check_record(record)
    clock = _Clock(record, now)
    rows, cursor = [], 0.0
    for a, b in paused_spans(record, now):
        if a > cursor:
            rows.append(_segment("session", "active", cursor, a))
        rows.append(_segment("session", "paused", a, b))
        cursor = b
    if clock.wall > cursor:
        rows.append(_segment("session", "active", cursor, clock.wall))
    paused = sum(r["seconds"] for r in rows if r["state"] == "paused")
    limit = record["session"].get("time_limit_seconds") or 0
    # The limit counts active time only, so what is left of it comes after the pauses.
    active = clock.wall - paused
    if limit > active:
        rows.append(_segment("session", "unused", clock.wall, clock.wall + limit - active))
    for m in messages(record):
        if m["role"] == "assistant" and m.get("latency_ms"):
            start = clock.t(m["created_at"])
            rows.append(_segment("ai", "ai", start, start + m["latency_ms"] / 1000))
    return rows


def _segment(lane: str, state: str, start: float, end: float) -> dict:
    return {
        "lane": lane,
        "state": state,
        "start": round(start, 3),
        "end": round(end, 3),
        "seconds": round(end - start, 3),
    }


# -- dashboard export ------------------------------------------------------------------


def to_csv(records: list[dict]) -> str:
    """The summaries, one row per record, columns in ``summary`` order."""
    rows = [summary(r) for r in records]
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(rows[0]) if rows else list(summary_fields()), lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_json(records: list[dict]) -> str:
    return json.dumps([summary(r) for r in records], indent=2, ensure_ascii=False)


def summary_fields() -> list[str]:
    """The summary's keys, without a record (for empty exports)."""
    return list(summary({"session": {"id": "-"}, "messages": [], "events": []}))
