"""The rule outcomes a session view publishes are the rules the service enforces: every
action listed in `allowed_actions` succeeds and every other one is refused, and `blocked`
is the refusal a chat request gets."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from views import THRESHOLDS, at

from ib_extension.api.errors import IBError
from ib_extension.api.models import ACTIONS
from ib_extension.service.budget import Ledger
from ib_extension.service.sessions import Session, hash_token

NOW = at(datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc))


def fresh() -> Session:
    return Session(id="s_1", candidate_name="Ada", candidate_email=None,
                   challenge={"id": None, "title": "T", "statement": "S"}, model="m",
                   assist_policy="full", time_limit_seconds=600, ledger=Ledger(1000),
                   token_hash=hash_token("t"), created_at=NOW - 100)


def in_state(name: str) -> Session:
    s = fresh()
    steps = {"created": [], "active": ["start"], "paused": ["start", "pause"],
             "locked": ["start"], "completed": ["start", "end"],
             "submitted": ["start", "submit"], "expired": ["start"]}[name]
    for action in steps:
        s.apply(action, NOW - 50)
    if name == "locked":
        s.set_locked(True)
    if name == "expired":
        s.apply("expire", NOW + 600)
    return s


def perform(s: Session, action: str) -> None:
    if action in ("lock", "unlock"):
        s.set_locked(action == "lock")
    elif action == "extend-time":
        s.extend_time(60, NOW)
    elif action == "extend-tokens":
        s.extend_tokens(100)
    else:
        s.apply(action, NOW)


STATES = ["created", "active", "paused", "locked", "completed", "submitted", "expired"]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_allowed_actions_are_exactly_the_ones_that_succeed(state, action):
    s = in_state(state)
    listed = action in s.view(NOW, THRESHOLDS).allowed_actions
    try:
        perform(copy.deepcopy(s), action)
        succeeded = True
    except IBError as e:
        assert e.code == "conflict"
        succeeded = False
    assert listed == succeeded


@pytest.mark.parametrize("state, code", [
    ("created", None), ("active", None), ("paused", "session_paused"),
    ("locked", "session_locked"), ("completed", "session_ended"),
    ("submitted", "session_ended"), ("expired", "time_up")])
def test_blocked_is_the_refusal_a_chat_request_gets(state, code):
    s = in_state(state)
    view = s.candidate_view(NOW, THRESHOLDS)
    refusal = s.chat_refusal(NOW)
    assert (view.blocked.code if view.blocked else None) == code == (refusal and refusal.code)
    if refusal:
        assert view.blocked.message == refusal.message


def test_a_spent_budget_blocks_and_an_extension_lifts_it():
    s = in_state("active")
    s.ledger.settle("m", 600, 400)
    assert s.view(NOW, THRESHOLDS).blocked.code == "budget_exhausted"
    s.extend_tokens(50)
    assert s.view(NOW, THRESHOLDS).blocked is None


def test_a_submission_says_so():
    assert "submitted" in in_state("submitted").chat_refusal(NOW).message


def test_the_view_carries_the_service_thresholds():
    assert in_state("active").view(NOW, [30, 15]).thresholds == [30, 15]
