"""Analytics of one interview, as pure functions over a session record.

A session record is ``{"session", "messages", "events", "final_notebook", "grade",
"challenge"}`` with the shapes of docs/API.md. Times in the results are seconds since
the session started (``t``), so candidates can be compared on one axis. Nothing here
talks to the service: the caller fetches the record.
"""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# -- reading a session record -------------------------------------------------------

# Events a person at the dashboard caused; they are marked on the charts.
INTERVIEWER_ACTIONS = {
    "session.started": "started",
    "session.paused": "paused",
    "session.resumed": "resumed",
    "session.locked": "locked",
    "session.unlocked": "unlocked",
    "session.ended": "ended",
    "time.extended": "time extended",
    "tokens.extended": "tokens extended",
}


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
    """The submitted notebook; else the one in the last submit event; else the last
    activity snapshot that carried one (a session ended without a submit)."""
    if record.get("final_notebook"):
        return record["final_notebook"]
    for wanted in ("session.submitted", "activity.snapshot"):
        for ev in reversed(events(record)):
            nb = (ev.get("payload") or {}).get("notebook")
            if ev["type"] == wanted and isinstance(nb, dict):
                return nb
    return None


def billed(message: dict) -> int:
    """The tokens a message accounts for: a question the whole prompt of its request, a
    reply its completion. (The service also copies the prompt onto the reply; counting
    it there too would count it twice.)"""
    key = "prompt_tokens" if message["role"] == "user" else "completion_tokens"
    return message.get(key) or 0


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


# -- figures ----------------------------------------------------------------------------

COLORS = {
    "tokens": "#3b5bdb",
    "budget": "#868e96",
    "action": "#f08c00",
    "active": "#37b24d",
    "paused": "#f03e3e",
    "unused": "#dee2e6",
    "ai": "#7048e8",
    "user": "#1c7ed6",
}
STATE_NAMES = {"active": "active", "paused": "paused", "unused": "time left", "ai": "AI replying"}
FIGURE_HEIGHT = 360


def styled(fig: go.Figure, title: str, *, height: int = FIGURE_HEIGHT, **layout) -> go.Figure:
    """The one look every Interview Buddy chart shares; ``layout`` adds to it or overrides."""
    look = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "template": "plotly_white",
        "height": height,
        "font": {
            "family": "system-ui, -apple-system, 'Segoe UI', sans-serif",
            "size": 12,
            "color": "#343a40",
        },
        "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        "hoverlabel": {"font": {"family": "system-ui, sans-serif"}},
    }
    fig.update_layout(**{**look, **layout})
    return fig


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 3)


def _who(record) -> str:
    # Plotly reads a few HTML tags in text; a name is shown as typed, never as markup.
    return html.escape(record["session"].get("candidate_name") or record["session"]["id"])


def fig_token_usage(record) -> go.Figure:
    rows = token_timeline(record)
    x = [_minutes(r["t"]) for r in rows]
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=[r["tokens"] for r in rows],
        name="tokens used",
        mode="lines",
        line={"shape": "hv", "color": COLORS["tokens"], "width": 2.5},
    )
    fig.add_scatter(
        x=x,
        y=[r["budget"] for r in rows],
        name="budget",
        mode="lines",
        line={"shape": "hv", "color": COLORS["budget"], "dash": "dash"},
    )
    actions = [r for r in rows if r["kind"] == "action"]
    fig.add_scatter(
        x=[_minutes(r["t"]) for r in actions],
        y=[r["tokens"] for r in actions],
        name="interviewer action",
        mode="markers+text",
        text=[r["label"] for r in actions],
        # Alternate left and right so that close actions do not overprint.
        textposition=[("top left", "top right")[i % 2] for i in range(len(actions))],
        marker={"symbol": "diamond", "size": 10, "color": COLORS["action"]},
    )
    return styled(
        fig,
        f"Token usage — {_who(record)}",
        xaxis_title="minutes since start",
        yaxis_title="tokens",
        yaxis_rangemode="tozero",
    )


def fig_time_utilisation(record) -> go.Figure:
    rows = time_utilisation(record)
    lanes = {"session": "session", "ai": "AI replying"}
    fig = go.Figure()
    for state in ("active", "paused", "unused", "ai"):
        segs = [r for r in rows if r["state"] == state]
        if segs:
            fig.add_bar(
                y=[lanes[r["lane"]] for r in segs],
                x=[_minutes(r["seconds"]) for r in segs],
                base=[_minutes(r["start"]) for r in segs],
                orientation="h",
                name=STATE_NAMES[state],
                marker_color=COLORS[state],
                hovertemplate="%{base:.1f}–%{customdata:.1f} min<extra>"
                + STATE_NAMES[state]
                + "</extra>",
                customdata=[_minutes(r["end"]) for r in segs],
            )
    return styled(
        fig,
        f"Time — {_who(record)}",
        height=240,
        barmode="overlay",
        xaxis_title="minutes since start",
        yaxis={"autorange": "reversed"},
    )


def fig_message_timeline(record) -> go.Figure:
    rows = message_timeline(record)
    user = [r for r in rows if r["role"] == "user"]
    ai = [r for r in rows if r["role"] == "assistant"]
    fig = go.Figure()
    fig.add_scatter(
        x=[_minutes(r["t"]) for r in user],
        y=["candidate"] * len(user),
        mode="markers",
        name="question",
        marker={"color": COLORS["user"], "size": 11},
        text=[f"{r['prompt_tokens']} prompt tokens<br>{html.escape(r['preview'])}" for r in user],
        hovertemplate="%{x:.1f} min<br>%{text}<extra></extra>",
    )
    fig.add_bar(
        y=["AI"] * len(ai),
        x=[max(_minutes(r["latency_seconds"]), 0.05) for r in ai],
        base=[_minutes(r["t"]) for r in ai],
        orientation="h",
        name="reply",
        marker_color=COLORS["ai"],
        text=[
            f"{r['completion_tokens']} completion tokens, {r['latency_seconds']:.1f} s "
            f"({r['status']})<br>{html.escape(r['preview'])}"
            for r in ai
        ],
        textposition="none",
        hovertemplate="%{base:.1f} min<br>%{text}<extra></extra>",
    )
    return styled(
        fig,
        f"Conversation — {_who(record)}",
        height=240,
        xaxis_title="minutes since start",
        yaxis={"autorange": "reversed"},
    )


COMPARED = (
    ("tokens_total", "Tokens used", 1),
    ("active_seconds", "Active minutes", 1 / 60),
    ("ai_time_share", "AI time share (%)", 100),
    ("score", "Score", 1),
)


def fig_compare(records: list[dict]) -> go.Figure:
    """Candidates who took the same challenge, side by side."""
    if not records:
        raise ValueError("fig_compare needs at least one session record")
    rows = [summary(r) for r in records]
    challenges = {r["challenge_id"] for r in rows}
    if len(challenges) > 1:
        raise ValueError(
            f"fig_compare compares one challenge; these records span {sorted(map(str, challenges))}"
        )
    fig = make_subplots(rows=1, cols=len(COMPARED), subplot_titles=[c[1] for c in COMPARED])
    names = [html.escape(r["candidate_name"] or r["session_id"]) for r in rows]
    palette = [COLORS["tokens"], COLORS["ai"], COLORS["active"], COLORS["action"], COLORS["user"]]
    for col, (key, _, scale) in enumerate(COMPARED, start=1):
        values = [None if r[key] is None else round(r[key] * scale, 1) for r in rows]
        fig.add_bar(
            x=names,
            y=values,
            row=1,
            col=col,
            showlegend=False,
            text=values,
            textposition="outside",
            cliponaxis=False,
            marker_color=[palette[i % len(palette)] for i in range(len(rows))],
        )
    title = html.escape(str(rows[0]["challenge_title"] or rows[0]["challenge_id"]))
    return styled(fig, f"Candidates on {title}", margin={"l": 50, "r": 20, "t": 90, "b": 50})


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
