"""What the service sends: one typed model per shape on the wire.

The service builds its responses and feed items from these models, the OpenAPI
document and the JSON export schema are generated from them, and tests build their
fixtures with them, so no side can invent a shape the service does not produce.
Times are ISO 8601 UTC strings with a Z (`iso()`); a score is a fraction from 0 to 1
everywhere (pages show it as a percentage).
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .wording import score_text  # noqa: F401 (pages import it from here)

# ---- vocabulary ----------------------------------------------------------------------
Status = Literal["created", "active", "paused", "completed", "expired"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
# When a session's clock starts (service/core.py: candidate_seen, workspace_opened, start):
# the one sentence every page says it with.
CLOCK_STARTS = ("The clock starts when the candidate first opens their workspace in a "
                "browser or asks the AI, or when you press Start on the monitor, whichever "
                "comes first.")
ENDED: tuple[str, ...] = ("completed", "expired")
EndReason = Literal["interviewer", "submitted", "time_up"]
# Interviewer actions on a session, as routes: POST /ib/api/sessions/{id}/<action>.
Action = Literal["start", "pause", "resume", "lock", "unlock", "end", "extend-time",
                 "extend-tokens"]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]
Role = Literal["user", "assistant"]
MessageStatus = Literal["complete", "streaming", "cut", "error", "interrupted"]
Actor = Literal["interviewer", "candidate", "system"]


@functools.lru_cache(maxsize=4096)  # a session's times recur in every view of it
def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds and a Z, as the API shows time."""
    if ts is None:
        return None
    stamp = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class Model(BaseModel):
    # Responses are built by the service: a field it does not know is a bug, not data.
    model_config = ConfigDict(extra="forbid")


# ---- sessions ------------------------------------------------------------------------
class ChallengeView(Model):
    """The challenge as a session carries it (what the candidate may see)."""

    id: str | None = None  # None for custom text
    title: str
    difficulty: str | None = None
    category: str | None = None
    statement: str
    starter_code: str = ""
    visible_tests: str = ""  # the tests the candidate may run from the workspace


class WarningRecord(Model):
    kind: Literal["time", "tokens"]
    threshold: int
    at: str


class Refusal(Model):
    """Why the candidate cannot ask the AI right now: the error the service would send."""

    code: str
    message: str


HandInSource = Literal["submit", "workspace", "hub"]


class HandIn(Model):
    """The final notebook the service holds: when it arrived and from where (`submit`: the
    candidate pressed Submit; `workspace`: their server sent it at the end; `hub`: the hub
    read it from their server at the end)."""

    at: str
    by: HandInSource
    path: str | None = None
    code_cells: int | None = None


class GradeTest(Model):
    name: str
    visible: bool
    passed: bool
    message: str = ""


class CellError(Model):
    cell: int
    message: str


class Grade(Model):
    """The grader's result. `score` is passed / total, a fraction from 0 to 1."""

    score: float = Field(ge=0, le=1)
    passed: int = Field(ge=0)
    total: int = Field(ge=0)
    tests: list[GradeTest] = Field(default_factory=list)
    cell_errors: list[CellError] = Field(default_factory=list)
    output_truncated: bool = False
    duration_seconds: float | None = None
    error: str | None = None


class HiddenCount(Model):
    passed: int
    total: int


class CandidateGrade(Grade):
    """A grade as the candidate sees it: visible tests in full, hidden ones as counts."""

    hidden: HiddenCount


class _SessionState(Model):
    """What both sides see of a session: its settings, clock, budget and outcome."""

    id: str
    candidate_name: str
    challenge: ChallengeView
    model: str
    assist_policy: str
    status: Status
    locked: bool
    time_limit_seconds: float
    time_used_seconds: float
    time_left_seconds: float
    time_paused_seconds: float
    deadline: str | None
    token_budget: int
    tokens_prompt: int
    tokens_completion: int
    tokens_used: int
    tokens_reserved: int
    tokens_left: int
    message_count: int
    created_at: str
    started_at: str | None
    ended_at: str | None
    paused_at: str | None
    last_activity_at: str | None
    end_reason: EndReason | None
    submitted_at: str | None
    warnings: list[WarningRecord]
    score: float | None = Field(ge=0, le=1)
    blocked: Refusal | None
    handed_in: HandIn | None
    thresholds: list[int]


class SessionView(_SessionState):
    """One session as the interviewer sees it, with the outcomes of the service's rules
    (`allowed_actions`, `blocked`, `thresholds`), so clients never re-derive them."""

    candidate_email: str | None = None
    flags: dict[str, int]
    grade: Grade | None
    allowed_actions: list[Action]


class CandidateSessionView(_SessionState):
    """The candidate's own session: no email, flags or interviewer actions; hidden tests
    only as counts."""

    grade: CandidateGrade | None


# ---- the conversation and the log -----------------------------------------------------
class Message(Model):
    """One chat message. A question carries the prompt estimate of its request; a reply
    carries what the provider billed for it (prompt and completion)."""

    id: str
    seq: int
    session_id: str
    role: Role
    content: str
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    status: MessageStatus
    created_at: str
    finished_at: str | None = None


class Event(Model):
    """One logged event; `payload` follows the event catalogue (api/events.py)."""

    id: int
    session_id: str
    type: str
    actor: Actor
    payload: dict[str, Any]
    at: str


class FeedEvent(Event):
    """An event as the live feed carries it: a big payload (a notebook snapshot) is left
    out and referenced, to be read once with GET `payload_url`."""

    payload_bytes: int | None = None
    payload_url: str | None = None


class Record(Model):
    """Everything about one session, for analytics, replay and exports."""

    session: SessionView
    messages: list[Message]
    events: list[Event]
    final_notebook: dict[str, Any] | None
    grade: Grade | None
    challenge: dict[str, Any]


# ---- lists, pages and the feed ---------------------------------------------------------
class SessionPage(Model):
    sessions: list[SessionView]
    total: int
    cursor: int
    epoch: str


class CreatedSession(Model):
    id: str
    candidate_token: str
    # On JupyterHub: the candidate's one-time link (service/workspaces.py); else None.
    candidate_url: str | None = None
    session: SessionView


class IssuedToken(Model):
    id: str
    candidate_token: str


class Messages(Model):
    messages: list[Message]


class Events(Model):
    events: list[Event]


class Delta(Model):
    message_id: str
    text: str


class FeedItem(Model):
    """One change: `kind` says what `data` is (a session view, a message, a streamed
    delta of a reply, or an event)."""

    seq: int
    session_id: str
    kind: Literal["session", "message", "delta", "event"]
    data: dict[str, Any]


class FeedPage(Model):
    epoch: str
    cursor: int
    reset: bool
    items: list[FeedItem]


class Health(Model):
    status: Literal["ok"]
    version: str
    sessions_active: int
    # history search: "ready", "filling" (from the file, searches scan until done), "scan"
    search_index: Literal["ready", "filling", "scan"]


class IssuedLink(Model):
    id: str
    candidate_url: str


class ModelsInfo(Model):
    models: list[str]
    default: str
    assist_policies: list[str]
    default_assist_policy: str
    candidate_links: bool = False  # on JupyterHub: sessions come with a candidate link
    # What each policy tells the AI (the text the service puts into its system prompt).
    assist_policy_texts: dict[str, str]
