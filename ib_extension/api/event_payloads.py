"""The payload of every event type in the catalogue (events.py), as pydantic models: what
the service checks a payload against before it logs it (``events.check_payload``).

Apart from the catalogue so that reading it (its sentences, categories and exported
fields: the exports, the replay, the analytics) does not build these models, nor import
pydantic: ``ib export`` reads the catalogue and nothing else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .models import Grade, Status  # noqa: F401 (Grade: grade.completed's payload)


class Payload(BaseModel):
    """A payload the service writes: every field known."""

    model_config = ConfigDict(extra="forbid")


class CandidatePayload(BaseModel):
    """A payload the candidate's workspace reports: known fields typed, more allowed
    (telemetry is evidence from the candidate's side, never a control)."""

    model_config = ConfigDict(extra="allow")


# ---- payloads -------------------------------------------------------------------------
class Created(Payload):
    time_limit_seconds: int
    token_budget: int
    model: str
    assist_policy: str
    challenge_id: str | None = None


class Lifecycle(Payload):
    """A status change; `status` is the session's status after it, `time_used_seconds`
    its clock then (older records lack it)."""

    status: Status
    reason: Literal["interviewer", "submitted", "time_up"] | None = None
    time_used_seconds: float | None = None


class Submitted(Lifecycle):
    notebook: dict[str, Any] | None = None


class Locked(Payload):
    locked: bool


class Empty(Payload):
    pass


class TimeExtended(Payload):
    seconds: int
    reopened: bool = False
    time_used_seconds: float | None = None


class TokensExtended(Payload):
    tokens: int


class ChatDone(Payload):
    message_id: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    reason: str | None = None  # chat.cut: why the reply ended early


class RefusalPayload(Payload):
    code: str
    message: str


class RefusalsCounted(Payload):
    """Refusals of one minute past the first few, stored as one event (service/refusals.py)."""

    count: int
    codes: dict[str, int]
    since: str
    window_seconds: float


class FlaggedMessage(Payload):
    """A message the candidate wrote in another role (service/chat_log.py)."""

    role: Literal["system", "developer", "assistant"]
    reason: Literal["instructions", "unknown_reply"]
    content: str  # up to max_message_chars
    chars: int  # its full length
    message_id: str | None = None


class UsageClamped(Payload):
    """A provider billed more than the reply's reservation; `over` was not charged."""

    message_id: str
    billed_prompt: int
    billed_completion: int
    charged: int
    over: int


class WarningPayload(Payload):
    kind: Literal["time", "tokens"]
    threshold: int
    left: int


class Injection(Payload):
    pattern: str
    excerpt: str
    message_id: str | None = None


class ProviderError(Payload):
    message: str
    message_id: str | None = None


class Skipped(Payload):
    reason: str


class HandedIn(Payload):
    """The final notebook, arrived after the end (from the candidate's server or the hub)."""

    by: Literal["workspace", "hub"]
    notebook: dict[str, Any]
    path: str | None = None
    code_cells: int = 0
    seconds_after_end: float = 0.0


class QuotaReached(Payload):
    limit: Literal["events", "snapshots", "bytes"]
    message: str


class LinkIssued(Payload):
    reissued: bool
    hub_user: str


class LinkRefused(Payload):
    reason: str


class WorkspaceClosed(Payload):
    """The end of a workspace on JupyterHub: the notebook the service captured from the
    candidate's server (service/capture.py), and whether the server was stopped."""

    path: str
    notebook: dict[str, Any] | None = None
    last_modified: str | None = None
    saved_after_end: bool = False
    problem: str | None = None
    server_stopped: bool


class WorkspaceRemoved(Payload):
    hub_user: str


class CellRun(CandidatePayload):
    cell_id: str | None = None
    execution_count: int | None = None
    started_at: str | None = None
    duration_ms: int | None = None
    error: bool | None = None
    error_name: str | None = None
    chars: int | None = None
    lines: int | None = None
    source: str | None = None
    sha256: str | None = None


class Snapshot(CandidatePayload):
    path: str | None = None
    reason: str | None = None
    notebook: dict[str, Any] | None = None
    outputs_dropped: bool | None = None


class Copy(CandidatePayload):
    message_id: str | None = None
    kind: str | None = None
    language: str | None = None
    chars: int | None = None
    lines: int | None = None


class Paste(CandidatePayload):
    cell_id: str | None = None
    lines_added: int | None = None
    lines: int | None = None
    chars: int | None = None
    sha256: str | None = None
