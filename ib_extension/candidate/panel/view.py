"""What the panel shows for a session state: pure functions, no widgets, no I/O.

The service's rules arrive with the state: `blocked` (why the AI is closed, in the
service's own sentence) and `thresholds` (where the meters change colour, the same as
its warnings); nothing here re-derives them. The browser side (panel.js) ticks the clock
and redraws while the kernel is busy, so it cannot call these; it receives `rules()`
(the estimate constants and labels) and applies the same few formulas, each named like
its Python twin here. The Python side uses these for `ChatPanel.summary()` and the tests.
"""

from __future__ import annotations

import math
from typing import Any

# Meter colours: above the first threshold "ok", then one level more per threshold passed.
LEVELS = ("ok", "warn", "low", "critical")

# Rough, dependency-free token estimate for the input box (tiktoken is not in the
# browser): English text and code average about four characters a token.
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4       # tokens OpenAI adds around each chat message
SYSTEM_PROMPT_TOKENS = 120  # the service's policy prompt, without the challenge statement
DEFAULT_REPLY_TOKENS = 350  # a reply's size until the conversation shows the real average

# The status pill's label for a refusal code (budget: the session itself is still running).
PILL_FOR = {"session_paused": "paused", "session_locked": "locked", "time_up": "expired",
            "session_ended": "completed"}
STATUS_LABELS = {
    "created": "Ready — the clock starts when you open the workspace",
    "active": "In progress",
    "paused": "Paused",
    "locked": "AI locked",
    "completed": "Ended",
    "submitted": "Submitted",
    "expired": "Time is up",
}


# What the candidate can still do while the AI is closed, per refusal code: budget
# exhausted and time up are told the same way (a banner, the input disabled, this line).
CAN_STILL = {
    "budget_exhausted": "You can still write and run code, run the tests and submit. Ask the "
                        "interviewer if you need more tokens.",
    "session_locked": "You can still write and run code, run the tests and submit.",
    "session_paused": "Your notebook is on hold too; nothing you do now counts against your time.",
    "time_up": "Your notebook is read-only now and is handed in as it was at the end.",
    "session_ended": "Your notebook is read-only now and is handed in as it was at the end.",
}
HANDED_IN_BY = {"submit": "when you submitted", "workspace": "at the end",
                "hub": "at the end"}


def level(percent_left: float, thresholds: list[int]) -> str:
    """Colour level of a meter: 'ok' above every threshold, one level more per threshold
    passed (the service's warning thresholds, most severe last)."""
    index = sum(1 for t in thresholds if percent_left <= t)
    return LEVELS[min(index, len(LEVELS) - 1)]


def percent(part: float, whole: float) -> float:
    return 0.0 if whole <= 0 else max(0.0, min(100.0, 100.0 * part / whole))


def time_left(state: dict[str, Any], elapsed: float = 0.0) -> float:
    """Seconds left, `elapsed` seconds after `state` was read (the clock runs only when active)."""
    left = float(state.get("time_left_seconds") or 0.0)
    if state.get("status") == "active":
        left -= elapsed
    return max(0.0, left)


def blocked(state: dict[str, Any]) -> tuple[str, str] | None:
    """(code, sentence) when the service says the candidate cannot ask the AI now."""
    refusal = state.get("blocked")
    return (refusal["code"], refusal["message"]) if refusal else None


def status_key(state: dict[str, Any]) -> str:
    """The label key of the status pill."""
    reason = blocked(state)
    key = PILL_FOR.get(reason[0]) if reason else None
    if key == "completed" and state.get("end_reason") == "submitted":
        return "submitted"
    return key or ("created" if state.get("status") == "created" else "active")


def estimate_tokens(text: str) -> int:
    """A rough token count of one message's text, with the per-message overhead."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD if text else 0


def conversation(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The chat messages to send with the next question: what the AI has seen and said."""
    return [{"role": m["role"], "content": m["content"]} for m in history
            if m.get("role") in ("user", "assistant") and m.get("content")]


def expected_reply(history: list[dict[str, Any]]) -> int:
    """Tokens of the next reply: the average reply so far, or a default before any."""
    replies = [m["completion_tokens"] for m in history
               if m.get("role") == "assistant" and m.get("completion_tokens")]
    return round(sum(replies) / len(replies)) if replies else DEFAULT_REPLY_TOKENS


def next_message_cost(state: dict[str, Any], history: list[dict[str, Any]], text: str) -> int:
    """About how many tokens sending `text` now will use: the prompt (system prompt, the
    conversation so far, the new text) plus a reply as long as the average one so far."""
    last_prompt = next((m for m in reversed(history)
                        if m.get("role") == "user" and m.get("prompt_tokens")), None)
    if last_prompt is not None:
        # The last request's prompt already counted everything before it; add what came after.
        after = history[history.index(last_prompt) + 1:]
        prompt = last_prompt["prompt_tokens"] + sum(
            m.get("completion_tokens") or estimate_tokens(m.get("content") or "") for m in after)
    else:
        statement = (state.get("challenge") or {}).get("statement") or ""
        prompt = SYSTEM_PROMPT_TOKENS + estimate_tokens(statement) + sum(
            estimate_tokens(m["content"]) for m in conversation(history))
    return prompt + estimate_tokens(text) + expected_reply(history)


def messages_left(state: dict[str, Any], history: list[dict[str, Any]]) -> int:
    """About how many more questions the budget allows at the current cost per message."""
    cost = next_message_cost(state, history, "x" * 200)  # a typical short question
    return max(0, int(state.get("tokens_left") or 0) // max(1, cost))


def clock(seconds: float) -> str:
    """'4:05' for minutes, '1:02:03' past an hour."""
    s = max(0, math.ceil(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def summary(state: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """One line for text front-ends and logs, e.g. in `repr(panel)`."""
    left = time_left(state)
    parts = [STATUS_LABELS[status_key(state)],
             f"{clock(left)} left",
             f"{int(state.get('tokens_left') or 0):,} of {int(state.get('token_budget') or 0):,} tokens left",
             f"about {messages_left(state, history)} more messages"]
    reason = blocked(state)
    if reason:
        parts.append(reason[1])
    return " · ".join(parts)


def rules() -> dict[str, Any]:
    """The constants panel.js needs to mirror these functions."""
    return {"levels": list(LEVELS), "pill_for": dict(PILL_FOR),
            "chars_per_token": CHARS_PER_TOKEN, "message_overhead": MESSAGE_OVERHEAD,
            "system_prompt_tokens": SYSTEM_PROMPT_TOKENS,
            "default_reply_tokens": DEFAULT_REPLY_TOKENS,
            "status_labels": dict(STATUS_LABELS), "can_still": dict(CAN_STILL),
            "handed_in_by": dict(HANDED_IN_BY)}
