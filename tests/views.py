"""Session views for tests that need one without a running service, built by the real
`Session` and its real transitions, so they have exactly the shape the service sends."""

from __future__ import annotations

from datetime import datetime, timezone

from ib_extension.service.budget import Ledger
from ib_extension.service.sessions import Session, hash_token

THRESHOLDS = [25, 10, 5]


def at(moment: datetime) -> float:
    return moment.astimezone(timezone.utc).timestamp()


def session_view(now: datetime, *, status: str = "active", elapsed: float = 600.0,
                 time_limit: float = 1800.0, budget: int = 1000, used: int = 0,
                 locked: bool = False, flags: dict | None = None,
                 challenge: dict | None = None, submitted: bool = False,
                 candidate: bool = False, **fields) -> dict:
    """The interviewer's (or with `candidate`, the candidate's) view of a session,
    `elapsed` seconds after it started, at `now` (`status` is reached with the real
    transitions; 'created' never started; `submitted` ends it by a submission)."""
    t = at(now)
    s = Session(id=fields.pop("id", "s_1"), candidate_name=fields.pop("candidate_name", "Ada"),
                candidate_email=fields.pop("candidate_email", None),
                challenge={"id": None, "title": "FizzBuzz", "difficulty": None,
                           "category": "custom", "statement": "Write fizzbuzz(n).",
                           "starter_code": "", **(challenge or {})},
                model="gpt-4o-mini", assist_policy="full", time_limit_seconds=time_limit,
                ledger=Ledger(budget), token_hash=hash_token("t"), created_at=t - elapsed - 60)
    assert not fields, f"unknown fields {sorted(fields)}"
    if status != "created":
        s.apply("start", t - elapsed)
        if used:
            s.ledger.settle("m", used // 2, used - used // 2)
        if locked:
            s.set_locked(True)
        transition = {"paused": "pause", "completed": "submit" if submitted else "end",
                      "expired": "expire"}.get(status)
        if transition == "expire":
            s.time_limit_seconds = elapsed
        if transition:
            s.apply(transition, t)
    s.flags.update(flags or {})
    view = s.candidate_view(t, THRESHOLDS) if candidate else s.view(t, THRESHOLDS)
    return view.model_dump(mode="json")
