"""Pure helpers that turn service data into small HTML fragments for the dashboards.

Everything a person typed (names, messages, challenge titles, event payloads) goes
through `esc` before it reaches an HTML widget: the widgets set innerHTML, so an
unescaped `<img onerror=...>` in a message would run in the interviewer's browser.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

from ..api.models import ENDED, STATUSES  # noqa: F401  (the pages' filters and labels)


def esc(value: Any) -> str:
    """Text as inert HTML (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def parse_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def clock(seconds: float | None) -> str:
    """3725 -> '1:02:05', 65 -> '1:05'; None -> '–'."""
    if seconds is None:
        return "–"
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def minutes(seconds: float | None) -> str:
    """600 -> '10 min', 90 -> '1:30' (whole minutes read better as minutes)."""
    if seconds is None:
        return "–"
    return f"{int(seconds) // 60} min" if int(seconds) % 60 == 0 else clock(seconds)


def ago(stamp: str | None, now: datetime | None = None) -> str:
    """'just now', '12 s ago', '5 min ago', '2 h ago'."""
    at = parse_time(stamp)
    if at is None:
        return "–"
    secs = ((now or datetime.now(timezone.utc)) - at).total_seconds()
    if secs < 5:
        return "just now"
    if secs < 60:
        return f"{int(secs)} s ago"
    if secs < 3600:
        return f"{int(secs // 60)} min ago"
    return f"{int(secs // 3600)} h ago"


def time_left(session: dict, now: datetime | None = None) -> float:
    """Seconds left now: an active session counts down to the deadline the service
    published, others stand still at the service's own figure."""
    deadline = parse_time(session.get("deadline"))
    if session.get("status") == "active" and deadline is not None:
        now = now or datetime.now(timezone.utc)
        return max(0.0, (deadline - now).total_seconds())
    return float(session.get("time_left_seconds") or 0.0)


def time_used(session: dict, now: datetime | None = None) -> float:
    """Seconds used now: the service's figure, plus what has run since it was read."""
    published = float(session.get("time_left_seconds") or 0.0)
    return float(session.get("time_used_seconds") or 0.0) + max(0.0, published
                                                                  - time_left(session, now))


LEVELS = ("ok", "low", "critical")


def level(share_left: float, thresholds: list[int] | tuple[int, ...] = ()) -> str:
    """Colour of a meter by what is left: one level more per warning threshold passed
    (the thresholds the service publishes with each session, as the candidate's meter)."""
    passed = sum(1 for t in thresholds if share_left * 100 <= t)
    return LEVELS[min(passed, len(LEVELS) - 1)]


def bar(left: float, total: float, label: str, *, title: str = "",
        thresholds: list[int] | tuple[int, ...] = ()) -> str:
    """A horizontal meter filled to the share left, coloured by it (as the candidate's)."""
    share = min(1.0, max(0.0, left / total)) if total else 0.0
    return (f'<div class="ib-bar ib-bar-{level(share, thresholds)}" title="{esc(title)}" '
            f'role="meter" aria-valuemin="0" aria-valuemax="{total:g}" aria-valuenow="{left:g}" '
            f'aria-label="{esc(label)}">'
            f'<div class="ib-bar-fill" style="width:{share * 100:.1f}%"></div>'
            f'<span class="ib-bar-label">{esc(label)}</span></div>')


def time_bar(session: dict, now: datetime | None = None) -> str:
    limit = float(session.get("time_limit_seconds") or 0)
    left, used = time_left(session, now), time_used(session, now)
    title = (f"{clock(used)} used of {clock(limit)}, "
             f"paused {clock(session.get('time_paused_seconds') or 0)}")
    thresholds = session.get("thresholds") or ()
    if session.get("status") in ENDED:  # what is left no longer matters; what was used does
        label = f"time up, {clock(used)} used" if session.get("status") == "expired" \
            else f"ended, {clock(used)} used"
        return bar(0, limit, label, title=title).replace("ib-bar ", "ib-bar ib-bar-over ", 1)
    if session.get("status") == "created":
        return bar(limit, limit, f"{clock(limit)} · not started", title=title)
    return bar(left, limit, f"{clock(left)} left", title=title, thresholds=thresholds)


def token_bar(session: dict) -> str:
    budget = int(session.get("token_budget") or 0)
    used = int(session.get("tokens_used") or 0)
    left = int(session.get("tokens_left") or 0)
    return bar(left, budget, f"{left:,} left of {budget:,}",
               title=f"{used:,} tokens billed ({session.get('tokens_reserved') or 0:,} reserved "
                     "for a reply in progress)",
               thresholds=session.get("thresholds") or ())


def status_badge(session: dict) -> str:
    status = session.get("status", "?")
    badge = f'<span class="ib-badge ib-status-{esc(status)}">{esc(status)}</span>'
    if session.get("locked"):
        badge += ' <span class="ib-badge ib-status-locked">locked</span>'
    return badge


FLAG_LABELS = (
    ("warnings", "warn", "warnings (time or tokens running low)"),
    ("refusals", "refused", "requests the service refused"),
    ("injection", "injection?", "suspected prompt-injection attempts"),
    ("large_paste", "paste", "large pastes into the notebook"),
    ("flagged_messages", "role msg", "messages the candidate wrote as system, developer or "
                                     "assistant (chat.flagged_message events)"),
    ("unbilled", "overbilled", "tokens the provider billed beyond what was reserved, not "
                               "charged to the candidate (usage.clamped events)"),
)


def flags(session: dict) -> str:
    found = session.get("flags") or {}
    out = [f'<span class="ib-flag ib-flag-{key}" title="{esc(help_)}">{label} {int(found[key])}</span>'
           for key, label, help_ in FLAG_LABELS if found.get(key)]
    return " ".join(out) or '<span class="ib-muted">–</span>'


def challenge_title(session: dict) -> str:
    ch = session.get("challenge") or {}
    return ch.get("title") or ch.get("id") or "custom"


def kv_table(rows: list[tuple[str, str]]) -> str:
    """Label/value rows; values are HTML the caller already escaped."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="ib-kv">{body}</table>'


def notice(kind: str, text: str) -> str:
    """A one-line result: kind is ok, error, info or warn."""
    return f'<div class="ib-notice ib-notice-{kind}">{esc(text)}</div>'
