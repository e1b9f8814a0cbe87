"""Analytics of one interview, as pure functions over a session record (records.py).

Times in the results are seconds since the session started (``t``), so candidates can be
compared on one axis. Nothing here talks to the service (the caller fetches the record)
or draws (figures.py does, with plotly).
"""

from __future__ import annotations

import csv
import io
import json

from ..api.events import interviewer_actions
from .records import (
    SessionClock,
    billed,
    billed_total,
    challenge,
    check_record,
    events,
    messages,
    parse_time,
)

# Events a person at the dashboard caused; they are marked on the charts.
INTERVIEWER_ACTIONS = interviewer_actions()


def paused_spans(record) -> list[tuple[float, float]]:
    """(from, to) wall seconds of every span the clock stood still (paused, or expired
    until the time was extended), as the service's lifecycle events say."""
    return [(a, b) for a, b, running in SessionClock(record).spans() if not running]


# -- numbers --------------------------------------------------------------------------


def summary(record) -> dict:
    """One flat dict of the interview's numbers (flat so that it is one CSV row).

    Time and tokens are the service's own numbers, as the session publishes them:
    ``time_used_seconds`` / ``time_paused_seconds`` / ``time_left_seconds`` from its
    clock, ``tokens_*`` what the provider billed (the ledger). The less obvious fields:

    - ``tokens_per_question``: tokens billed per question (its prompt and its reply);
    - ``ai_wait_seconds`` / ``ai_time_share``: time the AI spent replying, and its share
      of the time used;
    - ``budget_used_share``: tokens billed over the final budget (extensions included);
    - ``replies_incomplete``: replies cut off, failed or interrupted.
    """
    check_record(record)
    session, grade = record["session"], record.get("grade") or {}
    clock = SessionClock(record)
    msgs = messages(record)
    user = [m for m in msgs if m["role"] == "user"]
    assistant = [m for m in msgs if m["role"] == "assistant"]
    # The replies carry what the ledger charged; the session view says the same.
    prompt = sum(billed(m)[0] for m in assistant)
    completion = sum(billed(m)[1] for m in assistant)
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
    used = session.get("time_used_seconds") or 0.0
    chal = challenge(record)
    return {
        "session_id": session["id"],
        "candidate_name": session.get("candidate_name"),
        "challenge_id": chal.get("id"),
        "challenge_title": chal.get("title"),
        "model": session.get("model"),
        "status": session.get("status"),
        "end_reason": session.get("end_reason"),
        "created_at": session.get("created_at"),
        "started_at": session.get("started_at"),
        "ended_at": session.get("ended_at"),
        "time_limit_seconds": session.get("time_limit_seconds"),
        "time_extended_seconds": extra_time,
        "time_used_seconds": used,
        "time_paused_seconds": session.get("time_paused_seconds"),
        "time_left_seconds": session.get("time_left_seconds"),
        "pauses": kinds.count("session.paused"),
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
        "ai_time_share": _ratio(ai_wait, used),
        "refusals": kinds.count("refusal"),
        "warnings": kinds.count("warning"),
        "injection_flags": kinds.count("injection.suspected"),
        "score": grade.get("score"),
        "tests_passed": grade.get("passed"),
        "tests_total": grade.get("total"),
    }


def _ratio(part, whole, digits: int = 4):
    return round(part / whole, digits) if whole else None


def token_timeline(record) -> list[dict]:
    """Cumulative tokens billed and the budget in force, one row per change: a reply's
    tokens (counted when it finished), a budget extension, an interviewer action; and a
    last row at the session's end, so the line runs to it."""
    check_record(record)
    clock = SessionClock(record)
    evs = events(record)
    budget = (record["session"].get("token_budget") or 0) - sum(
        (e.get("payload") or {}).get("tokens") or 0 for e in evs if e["type"] == "tokens.extended"
    )
    changes = []  # (at, kind, tokens spent, label, budget added)
    for m in messages(record):
        tokens = billed_total(m)
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
    if clock.end is not None and clock.wall > rows[-1]["t"]:
        rows.append({"t": round(clock.wall, 3), "kind": "end", "tokens": used, "budget": budget,
                     "label": "end", "at": record["session"].get("ended_at")})
    return rows


def message_timeline(record) -> list[dict]:
    """One row per message: when (``t``), how long the reply took, what it billed (a
    question bills nothing itself: its prompt is billed with its reply)."""
    check_record(record)
    clock = SessionClock(record)
    rows = []
    for m in messages(record):
        prompt, completion = billed(m)
        rows.append(
            {
                "id": m["id"],
                "role": m["role"],
                "t": round(clock.t(m["created_at"]), 3),
                "latency_seconds": (m.get("latency_ms") or 0) / 1000,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "status": m.get("status"),
                "chars": len(m.get("content") or ""),
                "preview": _preview(m.get("content") or ""),
            }
        )
    return rows


def _preview(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def time_utilisation(record) -> list[dict]:
    """Segments of the session's time on two lanes: ``session`` (active / paused, then
    what is left of the time limit) and ``ai`` (the AI writing a reply)."""
    check_record(record)
    clock = SessionClock(record)
    rows = [_segment("session", "active" if running else "paused", a, b)
            for a, b, running in clock.spans()]
    left = record["session"].get("time_left_seconds") or 0.0  # the service's clock
    if left > 0 and clock.start is not None:
        rows.append(_segment("session", "unused", clock.wall, clock.wall + left))
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
