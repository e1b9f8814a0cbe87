"""What the panel shows for a session state: pure functions, no widgets, no I/O.

The browser side (panel.js) ticks the clock and redraws while the kernel is busy, so it
cannot call these; it receives `rules()` (thresholds, sentences, estimate constants) and
applies the same few formulas, each named like its Python twin here. The Python side uses
these for `ChatPanel.summary()`, `ask()`'s refusals and the tests.
"""

from __future__ import annotations

import math
from typing import Any

# Meter colours by percentage left: above 25 % green, then yellow, orange, red at 5 %.
THRESHOLDS = (25, 10, 5)
LEVELS = ("ok", "warn", "low", "critical")

# Rough, dependency-free token estimate for the input box (tiktoken is not in the
# browser): English text and code average about four characters a token.
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4       # tokens OpenAI adds around each chat message
SYSTEM_PROMPT_TOKENS = 120  # the service's policy prompt, without the challenge statement
DEFAULT_REPLY_TOKENS = 350  # a reply's size until the conversation shows the real average

# Why input is disabled, by reason key: the same sentences the service refuses with.
SENTENCES = {
    "submitted": "You have submitted your notebook, so the interview is over.",
    "completed": "This interview session has ended, so the AI assistant is closed.",
    "expired": "Time is up for this interview, so the AI assistant is closed.",
    "paused": "The interviewer has paused this session. You can continue when they resume it.",
    "locked": "The interviewer has locked the AI assistant for now. Ask them if you need it.",
    "budget": "Your token budget is used up, so the AI assistant is closed.",
}
STATUS_LABELS = {
    "created": "Ready — the clock starts with your first message",
    "active": "In progress",
    "paused": "Paused",
    "locked": "AI locked",
    "completed": "Ended",
    "submitted": "Submitted",
    "expired": "Time is up",
}


def level(percent_left: float) -> str:
    """Colour level of a meter: 'ok' above 25 %, 'warn' ≤ 25, 'low' ≤ 10, 'critical' ≤ 5."""
    index = sum(1 for t in THRESHOLDS if percent_left <= t)
    return LEVELS[index]


def percent(part: float, whole: float) -> float:
    return 0.0 if whole <= 0 else max(0.0, min(100.0, 100.0 * part / whole))


def time_left(state: dict[str, Any], elapsed: float = 0.0) -> float:
    """Seconds left, `elapsed` seconds after `state` was read (the clock runs only when active)."""
    left = float(state.get("time_left_seconds") or 0.0)
    if state.get("status") == "active":
        left -= elapsed
    return max(0.0, left)


def blocked(state: dict[str, Any], elapsed: float = 0.0) -> tuple[str, str] | None:
    """(reason key, sentence) when the candidate cannot ask the AI now, else None.
    The order matches the service's own checks, so the sentence is the one it would send."""
    status = state.get("status")
    if status == "completed":
        key = "submitted" if state.get("end_reason") == "submitted" else "completed"
    elif status == "expired" or (status == "active" and time_left(state, elapsed) <= 0):
        key = "expired"
    elif status == "paused":
        key = "paused"
    elif state.get("locked"):
        key = "locked"
    elif int(state.get("tokens_left") or 0) <= 0:
        key = "budget"
    else:
        return None
    return key, SENTENCES[key]


def status_key(state: dict[str, Any], elapsed: float = 0.0) -> str:
    """The label key of the status pill."""
    reason = blocked(state, elapsed)
    if reason and reason[0] != "budget":
        return reason[0]
    return "created" if state.get("status") == "created" else "active"


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
    return {"thresholds": list(THRESHOLDS), "levels": list(LEVELS),
            "chars_per_token": CHARS_PER_TOKEN, "message_overhead": MESSAGE_OVERHEAD,
            "system_prompt_tokens": SYSTEM_PROMPT_TOKENS,
            "default_reply_tokens": DEFAULT_REPLY_TOKENS,
            "sentences": dict(SENTENCES), "status_labels": dict(STATUS_LABELS)}
