"""The event catalogue: every event type the service logs, in one table.

For each type: who may see it, the shape of its payload, the sentence every page and
export uses for it, the filter category it falls in, whether it is flagged for the
interviewer, the label it carries on charts when an interviewer caused it, and the
payload fields an export keeps. The monitor's timeline, the replay, the exports and
the analytics read this table instead of keeping their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .wording import score_text

if TYPE_CHECKING:
    from pydantic import BaseModel

ALL = "all"
INTERVIEWER = "interviewer"


# ---- sentences ------------------------------------------------------------------------
def _minutes(seconds: Any) -> str:
    minutes = round((seconds or 0) / 60)
    return f"{minutes} min"


END_REASONS = {"interviewer": "by the interviewer", "time_up": "time is up",
               "submitted": "the candidate submitted"}


def _ended(p: dict) -> str:
    reason = END_REASONS.get(p.get("reason") or "interviewer", p.get("reason"))
    return f"Session ended ({reason})"


def _graded(p: dict) -> str:
    return f"Graded: {score_text(p.get('score'))} ({p.get('passed')}/{p.get('total')} tests)"


def _cell(p: dict) -> str:
    count = p.get("execution_count")
    title = f"Ran cell [{count}]" if count is not None else "Ran a cell"
    return title + (f" — {p.get('error_name') or 'error'}" if p.get("error") else "")


def _flagged(p: dict) -> str:
    if p.get("reason") == "instructions":
        return f"The candidate wrote a {p.get('role')} message ({p.get('chars')} characters)"
    return f"The candidate sent assistant text the AI never wrote ({p.get('chars')} characters)"


def _closed(p: dict) -> str:
    got = "notebook captured" if p.get("notebook") else f"no notebook: {p.get('problem')}"
    return (f"Workspace closed: {got}; server "
            f"{'stopped' if p.get('server_stopped') else 'not stopped'}")


def _chat(p: dict) -> str:
    return (f"AI reply: {p.get('prompt_tokens')} prompt + {p.get('completion_tokens')} "
            f"completion tokens, {(p.get('latency_ms') or 0) / 1000:.1f} s")


# ---- the table ------------------------------------------------------------------------
Category = Literal["lifecycle", "time_tokens", "chat", "flags", "activity", "grading",
                   "workspace"]
CATEGORY_NAMES: dict[str, str] = {
    "lifecycle": "Lifecycle", "time_tokens": "Time & tokens", "chat": "AI chat",
    "flags": "Flags", "activity": "Candidate activity", "grading": "Grading",
    "workspace": "Link & workspace",
}


@dataclass(frozen=True)
class EventKind:
    type: str
    model: str  # its payload's model: a class of event_payloads.py, by name
    sentence: Callable[[dict], str]
    category: Category
    audience: str = ALL
    flagged: bool = False
    action: str | None = None  # its label on charts, when an interviewer caused it
    exported: tuple[str, ...] = ()  # payload fields an export keeps
    with_message: bool = False  # what it says, the message it belongs to says too

    def describe(self, payload: dict | None) -> str:
        return self.sentence(payload or {})

    @property
    def payload(self) -> type[BaseModel]:
        """The payload's pydantic model (imported when a payload is first checked)."""
        from . import event_payloads

        return getattr(event_payloads, self.model)


_KINDS = [
    EventKind("session.created", "Created", lambda p: (
        f"Session created: {_minutes(p.get('time_limit_seconds'))}, "
        f"{p.get('token_budget', 0):,} tokens, {p.get('model')}, policy {p.get('assist_policy')}"),
        "lifecycle", exported=("time_limit_seconds", "token_budget", "model", "assist_policy",
                               "challenge_id")),
    EventKind("session.started", "Lifecycle", lambda p: "Session started", "lifecycle",
              action="started", exported=("status", "time_used_seconds")),
    EventKind("session.paused", "Lifecycle", lambda p: "Session paused", "lifecycle",
              action="paused", exported=("status", "time_used_seconds")),
    EventKind("session.resumed", "Lifecycle", lambda p: "Session resumed", "lifecycle",
              action="resumed", exported=("status", "time_used_seconds")),
    EventKind("session.locked", "Locked", lambda p: "AI assistant locked", "lifecycle",
              action="locked", exported=("locked",)),
    EventKind("session.unlocked", "Locked", lambda p: "AI assistant unlocked", "lifecycle",
              action="unlocked", exported=("locked",)),
    EventKind("session.ended", "Lifecycle", _ended, "lifecycle", action="ended",
              exported=("status", "reason", "time_used_seconds")),
    EventKind("session.expired", "Lifecycle", lambda p: "Time ran out", "lifecycle",
              exported=("status", "reason", "time_used_seconds")),
    EventKind("session.submitted", "Submitted", lambda p: "Candidate submitted the notebook",
              "lifecycle", exported=("status", "reason", "time_used_seconds")),
    EventKind("workspace.opened", "Empty", lambda p: "The candidate opened the workspace",
              "lifecycle", audience=INTERVIEWER),
    EventKind("notebook.handed_in", "HandedIn",
              lambda p: f"Final notebook handed in by the {p.get('by')} "
                        f"({p.get('code_cells', 0)} code cells, "
                        f"{p.get('seconds_after_end', 0):.0f} s after the end)",
              "lifecycle", audience=INTERVIEWER,
              exported=("by", "path", "code_cells", "seconds_after_end")),
    EventKind("session.token_rotated", "Empty",
              lambda p: "A new candidate token was issued (the old one stopped working)",
              "lifecycle", audience=INTERVIEWER),
    EventKind("time.extended", "TimeExtended",
              lambda p: f"Time extended by {_minutes(p.get('seconds'))}"
                        + (" (the session was reopened)" if p.get("reopened") else ""),
              "time_tokens", action="time extended",
              exported=("seconds", "reopened", "time_used_seconds")),
    EventKind("tokens.extended", "TokensExtended",
              lambda p: f"Token budget extended by {p.get('tokens') or 0:,}", "time_tokens",
              action="tokens extended", exported=("tokens",)),
    EventKind("warning", "WarningPayload",
              lambda p: f"Warning: {p.get('threshold')} % of the "
                        f"{'time' if p.get('kind') == 'time' else 'token budget'} left",
              "time_tokens", flagged=True, exported=("kind", "threshold", "left")),
    EventKind("chat.completed", "ChatDone", _chat, "chat", with_message=True,
              exported=("message_id", "prompt_tokens", "completion_tokens", "latency_ms")),
    EventKind("chat.cut", "ChatDone", lambda p: f"AI reply cut off ({p.get('reason')})", "chat",
              flagged=True, with_message=True,
              exported=("message_id", "prompt_tokens", "completion_tokens", "latency_ms",
                        "reason")),
    # Its message may echo the provider's key: pages never show it, exports drop it.
    EventKind("provider.error", "ProviderError", lambda p: "The AI provider failed", "chat",
              flagged=True, exported=("message_id",)),
    EventKind("refusal", "RefusalPayload",
              lambda p: f"Refused: {p.get('message') or p.get('code')}", "flags", flagged=True,
              exported=("code", "message")),
    EventKind("refusals.counted", "RefusalsCounted",
              lambda p: f"{p.get('count')} more refusals in a minute, counted, not listed",
              "flags", flagged=True, exported=("count", "codes", "since")),
    EventKind("chat.flagged_message", "FlaggedMessage", _flagged, "flags", audience=INTERVIEWER,
              flagged=True, exported=("role", "reason", "content", "chars", "message_id")),
    EventKind("usage.clamped", "UsageClamped",
              lambda p: f"The provider billed {p.get('over')} tokens more than reserved "
                        "(not charged)", "time_tokens", audience=INTERVIEWER, flagged=True,
              exported=("message_id", "billed_prompt", "billed_completion", "charged", "over")),
    EventKind("injection.suspected", "Injection",
              lambda p: f"Possible prompt injection ({p.get('pattern')}): “{p.get('excerpt')}”",
              "flags", audience=INTERVIEWER, flagged=True,
              exported=("pattern", "excerpt", "message_id")),
    EventKind("grade.completed", "Grade", _graded, "grading", audience=INTERVIEWER,
              exported=("score", "passed", "total", "duration_seconds", "error")),
    EventKind("grade.skipped", "Skipped", lambda p: f"Not graded: {p.get('reason')}", "grading",
              audience=INTERVIEWER, exported=("reason",)),
    EventKind("quota.reached", "QuotaReached",
              lambda p: f"Activity quota reached ({p.get('limit')}): {p.get('message')}",
              "flags", audience=INTERVIEWER, flagged=True, exported=("limit", "message")),
    # On JupyterHub (service/workspaces.py): the candidate's link and workspace.
    EventKind("link.issued", "LinkIssued",
              lambda p: "New candidate link (the earlier one stopped working)"
                        if p.get("reissued") else "Candidate link made", "workspace",
              audience=INTERVIEWER, exported=("reissued",)),
    EventKind("link.opened", "Empty", lambda p: "The candidate opened the link", "workspace",
              audience=INTERVIEWER),
    EventKind("link.refused", "LinkRefused",
              lambda p: f"A browser was refused the link: {p.get('reason')}", "workspace",
              audience=INTERVIEWER, flagged=True, exported=("reason",)),
    EventKind("workspace.closed", "WorkspaceClosed", _closed, "workspace", audience=INTERVIEWER,
              exported=("path", "last_modified", "saved_after_end", "problem",
                        "server_stopped")),
    EventKind("workspace.removed", "WorkspaceRemoved",
              lambda p: f"Workspace {p.get('hub_user')} removed", "workspace",
              audience=INTERVIEWER, exported=("hub_user",)),
    EventKind("activity.cell_executed", "CellRun", _cell, "activity",
              exported=("cell_id", "execution_count", "duration_ms", "error", "error_name",
                        "chars", "lines")),
    EventKind("activity.snapshot", "Snapshot",
              lambda p: f"Notebook saved{' (' + str(p['path']) + ')' if p.get('path') else ''}",
              "activity", exported=("path", "reason")),
    EventKind("activity.copy", "Copy",
              lambda p: f"Copied a {'code block' if p.get('kind') == 'code' else 'text'} "
                        "from the AI", "activity",
              exported=("message_id", "kind", "language", "chars", "lines")),
    EventKind("activity.paste", "Paste",
              lambda p: f"Large paste: +{p.get('lines_added', '?')} lines", "activity",
              flagged=True, exported=("cell_id", "lines_added", "lines", "chars")),
]
CATALOGUE: dict[str, EventKind] = {k.type: k for k in _KINDS}
EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)
# Events whose payload carries the candidate's notebook, the most final first.
NOTEBOOK_EVENTS: tuple[str, ...] = ("session.submitted", "notebook.handed_in", "workspace.closed",
                                    "activity.snapshot")
# What the candidate's workspace may report (POST /ib/api/me/events).
ACTIVITY_TYPES: tuple[str, ...] = tuple(t for t in CATALOGUE if t.startswith("activity."))


def kind(event_type: str) -> EventKind:
    try:
        return CATALOGUE[event_type]
    except KeyError:
        raise ValueError(f"{event_type!r} is not in the event catalogue (api/events.py)") from None


def describe(event: dict) -> str:
    """The sentence for a logged event (unknown types, from older data, by their name)."""
    entry = CATALOGUE.get(event.get("type", ""))
    return entry.describe(event.get("payload")) if entry else str(event.get("type"))


def final_notebook(events: list[dict]) -> dict | None:
    """The candidate's final notebook among a session's events: the submitted one; else
    the one the service captured from the workspace at the end (on JupyterHub); else the
    last snapshot that carried one."""
    for wanted in NOTEBOOK_EVENTS:
        for e in reversed(events):
            notebook = (e.get("payload") or {}).get("notebook")
            if e["type"] == wanted and isinstance(notebook, dict):
                return notebook
    return None


def check_payload(event_type: str, payload: dict) -> None:
    """ValueError naming the type and the problem unless the catalogue admits `payload`."""
    from pydantic import ValidationError

    try:
        kind(event_type).payload.model_validate(payload)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ValueError(f"{event_type} payload: '{where}': {first['msg']}") from None


def interviewer_actions() -> dict[str, str]:
    """Event type -> its chart label, for the events an interviewer causes."""
    return {t: k.action for t, k in CATALOGUE.items() if k.action}
