"""The panel's display logic (ib_extension.candidate.panel.view): meter levels, disabled reasons,
cost estimates, the clock. Pure functions, no widget, no service."""

from __future__ import annotations

import pytest

from ib_extension.candidate.panel import view


def session(**overrides):
    s = {"status": "active", "locked": False, "end_reason": None,
         "time_limit_seconds": 1800, "time_left_seconds": 1200.0,
         "token_budget": 20000, "tokens_used": 1000, "tokens_left": 19000,
         "challenge": {"title": "FizzBuzz", "statement": "Write `fizzbuzz(n)`."}}
    s.update(overrides)
    return s


# ---- meter levels --------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(view.THRESHOLDS)))
def test_each_threshold_starts_the_next_level(index):
    t = view.THRESHOLDS[index]
    assert view.level(t + 0.01) == view.LEVELS[index]
    assert view.level(t) == view.LEVELS[index + 1]


def test_levels_run_green_to_red():
    assert view.level(100) == "ok"
    assert view.level(0) == "critical"
    assert view.LEVELS == ("ok", "warn", "low", "critical")
    assert view.THRESHOLDS == (25, 10, 5)  # the 25 % / 10 % / 5 %


def test_percent_is_clamped_and_safe_for_zero():
    assert view.percent(5, 0) == 0.0
    assert view.percent(30, 20) == 100.0
    assert view.percent(-1, 20) == 0.0


# ---- state → disabled reason ----------------------------------------------------------
@pytest.mark.parametrize("overrides, key", [
    ({"status": "paused"}, "paused"),
    ({"locked": True}, "locked"),
    ({"status": "completed", "end_reason": "interviewer"}, "completed"),
    ({"status": "completed", "end_reason": "submitted"}, "submitted"),
    ({"status": "expired", "time_left_seconds": 0}, "expired"),
    ({"tokens_left": 0}, "budget"),
])
def test_each_state_disables_input_with_its_sentence(overrides, key):
    assert view.blocked(session(**overrides)) == (key, view.SENTENCES[key])


def test_active_session_with_time_and_tokens_is_not_blocked():
    assert view.blocked(session()) is None
    assert view.blocked(session(status="created")) is None


def test_the_service_order_of_reasons_applies():
    # An ended session stays "ended" even when it was also locked and out of tokens.
    assert view.blocked(session(status="completed", locked=True, tokens_left=0))[0] == "completed"
    assert view.blocked(session(status="paused", locked=True))[0] == "paused"


def test_time_runs_out_while_the_state_is_read():
    s = session(time_left_seconds=10.0)
    assert view.blocked(s, elapsed=9.0) is None
    assert view.blocked(s, elapsed=10.0)[0] == "expired"


def test_the_clock_only_runs_while_active():
    assert view.time_left(session(status="paused", time_left_seconds=100.0), elapsed=60) == 100.0
    assert view.time_left(session(status="active", time_left_seconds=100.0), elapsed=60) == 40.0
    assert view.time_left(session(status="active", time_left_seconds=10.0), elapsed=60) == 0.0


@pytest.mark.parametrize("overrides, key", [
    ({}, "active"), ({"status": "created"}, "created"), ({"status": "paused"}, "paused"),
    ({"locked": True}, "locked"), ({"tokens_left": 0}, "active"),
    ({"status": "completed", "end_reason": "submitted"}, "submitted"),
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
    s = session(tokens_left=10_000)
    cost = view.next_message_cost(s, [], "x" * 200)
    assert view.messages_left(s, []) == 10_000 // cost
    assert view.messages_left(session(tokens_left=0), []) == 0


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
    line = view.summary(session(status="paused", time_left_seconds=605), [])
    assert line.startswith(view.STATUS_LABELS["paused"])
    assert "10:05 left" in line
    assert "19,000 of 20,000 tokens left" in line
    assert line.endswith(view.SENTENCES["paused"])


def test_rules_carry_every_constant_the_browser_mirrors():
    r = view.rules()
    assert r["thresholds"] == list(view.THRESHOLDS)
    assert r["levels"] == list(view.LEVELS)
    assert r["sentences"] == view.SENTENCES
    assert set(view.STATUS_LABELS) <= set(r["status_labels"])
    # panel.js reads exactly these names
    js = (view.__file__.replace("view.py", "panel.js"))
    source = open(js, encoding="utf-8").read()
    for name in r:
        assert f"rules.{name}" in source, f"panel.js does not use rules.{name}"
