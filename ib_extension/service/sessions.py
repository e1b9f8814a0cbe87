"""A session's state, its lifecycle rules and its clock arithmetic (no I/O here).

created → active → paused ⇄ active → completed | expired, plus a `locked` flag.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..api.errors import IBError
from ..api.models import ENDED as _ENDED
from ..api.models import STATUSES as _STATUSES
from ..api.models import CandidateSessionView, HandIn, Refusal, SessionView, iso
from .budget import Ledger

STATUSES = set(_STATUSES)
ENDED = set(_ENDED)

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"created"}), "active"),
    "pause": (frozenset({"active"}), "paused"),
    "resume": (frozenset({"paused"}), "active"),
    "end": (frozenset({"created", "active", "paused"}), "completed"),
    "submit": (frozenset({"created", "active", "paused"}), "completed"),
    "expire": (frozenset({"active"}), "expired"),
}

# What each status means, for the sentences in 409s.
_STATUS_WORDS = {
    "created": "has not started yet",
    "active": "is running",
    "paused": "is paused",
    "completed": "has ended",
    "expired": "has run out of time",
}


def candidate_grade(result: dict[str, Any]) -> dict[str, Any]:
    """A grade as the candidate may see it: hidden tests only as a count."""
    tests = result.get("tests") or []
    hidden = [t for t in tests if not t.get("visible")]
    return {**result, "tests": [t for t in tests if t.get("visible")],
            "hidden": {"passed": sum(bool(t.get("passed")) for t in hidden), "total": len(hidden)}}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


CANDIDATE_TOKEN_PREFIX = "ibc_"


def new_token() -> str:
    return CANDIDATE_TOKEN_PREFIX + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def used_up(ledger: Ledger) -> IBError:
    """The refusal once a budget cannot hold even the shortest request: the session
    publishes it (the workspace closes the chat as at time-up) and the gateway says it."""
    return IBError("budget_exhausted",
                   f"Your token budget is used up: {ledger.settled_left} of your "
                   f"{ledger.budget} tokens are left, fewer than any message needs, so the AI "
                   "assistant is closed. Ask the interviewer if you need more tokens.")


@dataclass
class Session:
    id: str
    candidate_name: str
    candidate_email: str | None
    challenge: dict[str, Any]
    model: str
    assist_policy: str
    time_limit_seconds: float
    ledger: Ledger
    token_hash: str
    created_at: float
    status: str = "created"
    locked: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    paused_at: float | None = None
    paused_seconds: float = 0.0
    message_count: int = 0
    last_activity_at: float | None = None
    end_reason: str | None = None
    submitted_at: float | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)  # history, for display
    warned: set[tuple[str, int]] = field(default_factory=set)  # thresholds currently crossed
    grade: dict[str, Any] | None = None  # the grader's result, once the session has ended
    flags: dict[str, int] = field(
        default_factory=lambda: {"refusals": 0, "injection": 0, "large_paste": 0, "warnings": 0}
    )
    # Not columns of their own (rebuilt on load from submitted_at and the events):
    # the final notebook's arrival {at, by, path, code_cells}, once there is one;
    handed_in: dict[str, Any] | None = None
    # whether a workspace was opened in a browser (then the end waits for its hand-in);
    workspace_opened: bool = False
    # tokens the shortest possible request needs (the service's instructions, an empty
    # question, one token of reply), learnt by the gateway: below it the budget is used up.
    shortest_request: int = 0

    # ---- clock -------------------------------------------------------------------
    def time_used(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else now
        paused = self.paused_seconds
        if self.paused_at is not None:
            paused += end - self.paused_at
        return max(0.0, end - self.started_at - paused)

    def time_left(self, now: float) -> float:
        return max(0.0, self.time_limit_seconds - self.time_used(now))

    def deadline(self, now: float) -> float | None:
        """When the time runs out, if nothing changes; only a running clock has one."""
        if self.status != "active":
            return None
        return now + self.time_left(now)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    # ---- lifecycle ---------------------------------------------------------------
    def apply(self, action: str, now: float) -> None:
        """Move to the next status, or raise a 409 with a sentence."""
        allowed, target = TRANSITIONS[action]
        if self.status not in allowed:
            raise IBError(
                "conflict",
                f"Session {self.id} {_STATUS_WORDS[self.status]}, so it cannot {action}"
                f" (possible from: {', '.join(sorted(allowed))}).",
            )
        if action == "start":
            self.started_at = now
        elif action == "pause":
            self.paused_at = now
        elif action == "resume":
            self._close_pause(now)
        elif action in ("end", "submit"):
            self._close_pause(now)
            self.ended_at = now
            self.end_reason = "submitted" if action == "submit" else "interviewer"
            if action == "submit":
                self.submitted_at = now
        elif action == "expire":
            # Freeze the clock at the exact moment time ran out.
            self.ended_at = now - max(0.0, self.time_used(now) - self.time_limit_seconds)
            self.end_reason = "time_up"
        self.status = target

    def _close_pause(self, now: float) -> None:
        if self.paused_at is not None:
            self.paused_seconds += now - self.paused_at
            self.paused_at = None

    def set_locked(self, locked: bool) -> None:
        if self.ended:
            raise IBError("conflict", f"Session {self.id} {_STATUS_WORDS[self.status]}; "
                          "there is nothing to lock or unlock.")
        if self.locked == locked:
            word = "locked" if locked else "unlocked"
            raise IBError("conflict", f"Session {self.id} is already {word}.")
        self.locked = locked

    def extend_time(self, seconds: float, now: float) -> bool:
        """Add time; an expired session comes back to life. Returns True if it did."""
        if self.status == "completed":
            raise IBError("conflict", f"Session {self.id} has ended; its time cannot be extended.")
        self.time_limit_seconds += seconds
        if self.status == "expired":
            # The span between expiry and now was nobody's time: count it as paused.
            self.paused_seconds += now - (self.ended_at or now)
            self.ended_at = None
            self.end_reason = None
            self.status = "active"
            return True
        return False

    def extend_tokens(self, tokens: int) -> None:
        if self.ended:
            raise IBError("conflict", f"Session {self.id} {_STATUS_WORDS[self.status]}; "
                          "its budget cannot be extended.")
        self.ledger.extend(tokens)

    def allowed_actions(self) -> list[str]:
        """The interviewer actions the rules above admit now (the same checks, not a copy)."""
        allowed = [a for a in ("start", "pause", "resume", "end") if self.status in TRANSITIONS[a][0]]
        if not self.ended:
            allowed.append("unlock" if self.locked else "lock")
            allowed.append("extend-tokens")
        if self.status != "completed":
            allowed.append("extend-time")
        return allowed

    def chat_refusal(self, now: float) -> IBError | None:
        """Why the candidate may not ask the AI right now, if they may not. The gateway
        refuses with it and every view publishes it, so pages never re-derive it."""
        if self.status == "completed":
            if self.end_reason == "submitted":
                return IBError("session_ended", "You have submitted your notebook, so the "
                               "interview is over.")
            return IBError("session_ended",
                           "This interview session has ended, so the AI assistant is closed.")
        if self.status == "expired" or (self.status == "active" and self.time_left(now) <= 0):
            return IBError("time_up", "Time is up for this interview, so the AI assistant is closed.")
        if self.status == "paused":
            return IBError("session_paused", "The interviewer has paused this session. You can "
                           "continue when they resume it.")
        if self.locked:
            return IBError("session_locked", "The interviewer has locked the AI assistant for "
                           "now. Ask them if you need it.")
        left = self.ledger.settled_left
        if left <= 0 or (self.ledger.used and left < self.shortest_request):
            return used_up(self.ledger)
        return None

    # ---- warnings ----------------------------------------------------------------
    def fractions_left(self, now: float) -> dict[str, float]:
        fractions = {}
        if self.started_at is not None and self.time_limit_seconds:
            fractions["time"] = self.time_left(now) / self.time_limit_seconds
        if self.ledger.budget:
            fractions["tokens"] = self.ledger.settled_left / self.ledger.budget
        return fractions

    def due_warnings(self, now: float, thresholds: list[int]) -> list[tuple[str, int]]:
        """Thresholds newly crossed, the most severe one per kind.

        Crossing several at once warns once; an extension that lifts a kind back above
        a threshold re-arms it.
        """
        due = []
        for kind, frac in self.fractions_left(now).items():
            percent_left = frac * 100
            self.warned = {(k, t) for (k, t) in self.warned if k != kind or percent_left <= t}
            crossed = [t for t in sorted(thresholds) if percent_left <= t and (kind, t) not in self.warned]
            if crossed:
                due.append((kind, crossed[0]))
                self.warned |= {(kind, t) for t in crossed}
        return due

    # ---- views -------------------------------------------------------------------
    def time_paused(self, now: float) -> float:
        end = self.ended_at if self.ended_at is not None else now
        return self.paused_seconds + (end - self.paused_at if self.paused_at is not None else 0.0)

    def _fields(self, now: float, thresholds: list[int]) -> dict[str, Any]:
        ledger = self.ledger
        refusal = self.chat_refusal(now)
        return {
            "id": self.id,
            "candidate_name": self.candidate_name,
            "challenge": self.challenge,
            "model": self.model,
            "assist_policy": self.assist_policy,
            "status": self.status,
            "locked": self.locked,
            "time_limit_seconds": self.time_limit_seconds,
            "time_used_seconds": round(self.time_used(now), 3),
            "time_left_seconds": round(self.time_left(now), 3),
            "time_paused_seconds": round(self.time_paused(now), 3),
            "deadline": iso(self.deadline(now)),
            "token_budget": ledger.budget,
            "tokens_prompt": ledger.prompt,
            "tokens_completion": ledger.completion,
            "tokens_used": ledger.used,
            "tokens_reserved": ledger.reserved,
            "tokens_left": ledger.settled_left,
            "message_count": self.message_count,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "paused_at": iso(self.paused_at),
            "last_activity_at": iso(self.last_activity_at),
            "end_reason": self.end_reason,
            "submitted_at": iso(self.submitted_at),
            "warnings": [
                {"kind": w["kind"], "threshold": w["threshold"], "at": iso(w["at"])}
                for w in self.warnings
            ],
            "score": self.grade.get("score") if self.grade else None,
            "blocked": Refusal(code=refusal.code, message=refusal.message) if refusal else None,
            "handed_in": HandIn(**{**self.handed_in, "at": iso(self.handed_in["at"])})
            if self.handed_in else None,
            "thresholds": list(thresholds),
        }

    def view(self, now: float, thresholds: list[int]) -> SessionView:
        """The session as the interviewer sees it."""
        return self._view(self._fields(now, thresholds))

    def candidate_view(self, now: float, thresholds: list[int]) -> CandidateSessionView:
        """The session as its candidate sees it: hidden tests only as counts."""
        return self._candidate_view(self._fields(now, thresholds))

    def views(self, now: float, thresholds: list[int]) -> tuple[SessionView, CandidateSessionView]:
        """Both at once (their shared fields computed once)."""
        fields = self._fields(now, thresholds)
        return self._view(fields), self._candidate_view(fields)

    def _view(self, fields: dict[str, Any]) -> SessionView:
        return SessionView(**fields, candidate_email=self.candidate_email,
                           flags=dict(self.flags), grade=self.grade,
                           allowed_actions=self.allowed_actions())

    def _candidate_view(self, fields: dict[str, Any]) -> CandidateSessionView:
        return CandidateSessionView(**fields, grade=candidate_grade(self.grade)
                                    if self.grade else None)

    # ---- persistence -------------------------------------------------------------
    _PLAIN: ClassVar[tuple[str, ...]] = (
        "id", "candidate_name", "candidate_email", "challenge", "model", "assist_policy",
        "time_limit_seconds", "token_hash", "status", "locked", "created_at", "started_at",
        "ended_at", "paused_at", "paused_seconds", "message_count", "last_activity_at",
        "end_reason", "submitted_at", "warnings", "flags", "grade",
    )

    def to_row(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in self._PLAIN}
        row.update(
            token_budget=self.ledger.budget,
            tokens_prompt=self.ledger.prompt,
            tokens_completion=self.ledger.completion,
            warned=sorted([k, t] for k, t in self.warned),
        )
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Session:
        s = cls(
            **{k: row[k] for k in cls._PLAIN},
            ledger=Ledger(row["token_budget"], row["tokens_prompt"], row["tokens_completion"]),
        )
        s.warned = {(k, t) for k, t in row["warned"]}
        if s.submitted_at is not None:
            s.handed_in = {"at": s.submitted_at, "by": "submit"}
        return s
