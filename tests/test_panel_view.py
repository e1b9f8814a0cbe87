"""The panel's display logic (ib_extension.candidate.panel.view): meter levels, disabled reasons,
cost estimates, the clock. Pure functions, no widget, no service."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from views import THRESHOLDS, session_view

from ib_extension.candidate.panel import view

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def session(**overrides):
    """A real candidate view: 20,000 tokens with 1,000 used, 1,200 s of 1,800 left."""
    fields = {"budget": 20000, "used": 1000, "elapsed": 600.0, "time_limit": 1800.0,
              "challenge": {"title": "FizzBuzz", "statement": "Write `fizzbuzz(n)`."}}
    return session_view(NOW, candidate=True, **{**fields, **overrides})


# ---- meter levels --------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(THRESHOLDS)))
def test_each_threshold_starts_the_next_level(index):
    t = THRESHOLDS[index]
    assert view.level(t + 0.01, THRESHOLDS) == view.LEVELS[index]
    assert view.level(t, THRESHOLDS) == view.LEVELS[index + 1]


def test_levels_run_green_to_red_at_the_service_thresholds():
    assert view.level(100, THRESHOLDS) == "ok"
    assert view.level(0, THRESHOLDS) == "critical"
    assert session()["thresholds"] == THRESHOLDS  # the service sends them with the state


def test_percent_is_clamped_and_safe_for_zero():
    assert view.percent(5, 0) == 0.0
    assert view.percent(30, 20) == 100.0
    assert view.percent(-1, 20) == 0.0


# ---- state → disabled reason ----------------------------------------------------------
@pytest.mark.parametrize("overrides, code", [
    ({"status": "paused"}, "session_paused"),
    ({"locked": True}, "session_locked"),
    ({"status": "completed"}, "session_ended"),
    ({"status": "completed", "submitted": True}, "session_ended"),
    ({"status": "expired"}, "time_up"),
    ({"used": 20000}, "budget_exhausted"),
])
def test_each_state_disables_input_with_the_service_sentence(overrides, code):
    state = session(**overrides)
    assert view.blocked(state) == (code, state["blocked"]["message"]) and code == state["blocked"]["code"]


def test_active_session_with_time_and_tokens_is_not_blocked():
    assert view.blocked(session()) is None
    assert view.blocked(session(status="created")) is None


def test_the_clock_only_runs_while_active():
    paused, active = session(status="paused"), session()
    assert view.time_left(paused, elapsed=60) == paused["time_left_seconds"]
    assert view.time_left(active, elapsed=60) == active["time_left_seconds"] - 60
    assert view.time_left(active, elapsed=6000) == 0.0


@pytest.mark.parametrize("overrides, key", [
    ({}, "active"), ({"status": "created"}, "created"), ({"status": "paused"}, "paused"),
    ({"locked": True}, "locked"), ({"used": 20000}, "active"), ({"status": "expired"}, "expired"),
    ({"status": "completed"}, "completed"), ({"status": "completed", "submitted": True}, "submitted"),
])
def test_status_pill(overrides, key):
    assert view.status_key(session(**overrides)) == key
    assert key in view.STATUS_LABELS


# ---- estimates -------------------------------------------------------------------------
def test_estimate_tokens_is_about_four_characters_a_token():
    assert view.estimate_tokens("") == 0
    assert view.estimate_tokens("x" * 400) == 400 // view.CHARS_PER_TOKEN + view.MESSAGE_OVERHEAD


def test_first_message_cost_counts_the_statement_and_a_default_reply():
    s = session()
    statement = s["challenge"]["statement"]
    expected = (view.SYSTEM_PROMPT_TOKENS + view.estimate_tokens(statement)
                + view.estimate_tokens("hello") + view.DEFAULT_REPLY_TOKENS)
    assert view.next_message_cost(s, [], "hello") == expected


def test_later_cost_builds_on_the_last_prompt_the_service_counted():
    history = [
        {"id": "m1", "role": "user", "content": "q1", "prompt_tokens": 300},
        {"id": "m2", "role": "assistant", "content": "a1", "completion_tokens": 100},
        {"id": "m3", "role": "user", "content": "q2", "prompt_tokens": 420},
        {"id": "m4", "role": "assistant", "content": "a2", "completion_tokens": 60},
    ]
    text = "x" * 40
    assert view.next_message_cost(session(), history, text) == (
        420 + 60 + view.estimate_tokens(text) + (100 + 60) // 2)


def test_messages_left_divides_the_budget_by_the_cost():
    s = session(used=10_000)
    cost = view.next_message_cost(s, [], "x" * 200)
    assert view.messages_left(s, []) == 10_000 // cost
    assert view.messages_left(session(used=20_000), []) == 0


def test_conversation_keeps_what_the_ai_saw_and_said():
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""},
               {"role": "assistant", "content": "a", "status": "cut"}]
    assert view.conversation(history) == [{"role": "user", "content": "q"},
                                          {"role": "assistant", "content": "a"}]


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.2, "1:00"), (605, "10:05"),
                                           (3723, "1:02:03"), (-5, "0:00")])
def test_clock(seconds, text):
    assert view.clock(seconds) == text


def test_summary_names_status_time_tokens_and_reason():
    state = session(status="paused", elapsed=1195.0)
    line = view.summary(state, [])
    assert line.startswith(view.STATUS_LABELS["paused"])
    assert "10:05 left" in line
    assert "19,000 of 20,000 tokens left" in line
    assert line.endswith(state["blocked"]["message"])


def test_rules_carry_every_constant_the_browser_mirrors():
    r = view.rules()
    assert r["levels"] == list(view.LEVELS)
    assert r["pill_for"] == view.PILL_FOR
    assert set(view.STATUS_LABELS) <= set(r["status_labels"])
    # panel.js reads exactly these names
    js = (view.__file__.replace("view.py", "panel.js"))
    source = open(js, encoding="utf-8").read()
    for name in r:
        assert f"rules.{name}" in source, f"panel.js does not use rules.{name}"
