"""analytics: numbers, timelines and charts derived from constructed session records."""

import csv
import io
import json
import random

import plotly.graph_objects as go
import pytest
from session_records import RecordBuilder, sample_record

from ib_extension.review import analytics, figures, records


def test_time_is_the_services_clock_and_pauses_come_from_its_events():
    b = RecordBuilder()
    b.start(100)
    b.pause(400)
    b.resume(520)
    b.end(1100)
    record = b.build()
    s = analytics.summary(record)
    session = record["session"]
    assert s["time_used_seconds"] == session["time_used_seconds"] == (1100 - 100) - (520 - 400)
    assert s["time_paused_seconds"] == session["time_paused_seconds"] == 520 - 400
    assert s["time_left_seconds"] == session["time_left_seconds"]
    assert s["pauses"] == 1
    assert analytics.paused_spans(record) == [(300, 420)]


def test_pause_without_resume_lasts_until_the_end():
    b = RecordBuilder()
    b.start(0)
    b.pause(500)
    b.end(800)
    record = b.build()
    s = analytics.summary(record)
    assert (s["time_used_seconds"], s["time_paused_seconds"]) == (500, 300)
    assert analytics.paused_spans(record) == [(500, 800)]


def test_a_live_session_is_measured_up_to_when_its_view_was_read():
    b = RecordBuilder()
    b.start(0)
    b.pause(100)
    b.resume(160)
    b.ask(300, "q", "a", latency=100)  # the view is read at 400 s
    record = b.build()
    s = analytics.summary(record)
    assert (s["time_used_seconds"], s["time_paused_seconds"]) == (340, 60)
    assert analytics.token_timeline(record)[-1]["t"] == 400


def test_an_expired_session_reopened_by_an_extension_stood_still_in_between():
    b = RecordBuilder(time_limit_seconds=600)
    b.start(0)
    b.expire(600)
    b.extend_time(900, 300)  # the 300 s between expiry and reopening are nobody's
    b.end(1000)
    record = b.build()
    assert record["session"]["time_used_seconds"] == 700
    assert analytics.paused_spans(record) == [(600, 900)]
    active = sum(r["seconds"] for r in analytics.time_utilisation(record)
                 if r["state"] == "active")
    assert active == analytics.summary(record)["time_used_seconds"] == 700


def test_conversation_numbers():
    b = RecordBuilder(token_budget=10_000)
    b.start(0)
    asks = [(45, 300, 100, 2.0), (200, 700, 250, 5.5), (600, 1200, 80, 1.5)]
    for t, prompt, completion, latency in asks:
        b.ask(
            t,
            "question",
            "answer",
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency=latency,
        )
    b.pause(700)
    b.resume(760)
    b.end(1000)
    s = analytics.summary(b.build())
    prompt = sum(a[1] for a in asks)
    completion = sum(a[2] for a in asks)
    assert (s["messages_user"], s["messages_assistant"]) == (3, 3)
    assert (s["tokens_prompt"], s["tokens_completion"]) == (prompt, completion)
    assert s["tokens_total"] == prompt + completion
    assert s["tokens_per_question"] == round((prompt + completion) / 3, 1)
    assert s["budget_used_share"] == round((prompt + completion) / 10_000, 4)
    assert s["first_question_after_seconds"] == asks[0][0]
    assert s["ai_wait_seconds"] == sum(a[3] for a in asks)
    assert s["ai_time_share"] == round(sum(a[3] for a in asks) / (1000 - 60), 4)


def test_tokens_are_what_the_provider_billed_not_the_estimate():
    b = RecordBuilder(token_budget=10_000)
    b.start(0)
    b.ask(10, "q1", "a1", prompt_tokens=150, completion_tokens=40, estimate=100)
    b.ask(60, "q2", "a2", prompt_tokens=330, completion_tokens=90, estimate=220)
    record = b.build()
    s = analytics.summary(record)
    session = record["session"]
    assert (s["tokens_prompt"], s["tokens_completion"]) == (150 + 330, 40 + 90)
    assert (s["tokens_prompt"], s["tokens_completion"], s["tokens_total"]) == (
        session["tokens_prompt"], session["tokens_completion"], session["tokens_used"])
    assert analytics.token_timeline(record)[-1]["tokens"] == session["tokens_used"]
    questions = [r for r in analytics.message_timeline(record) if r["role"] == "user"]
    assert {(r["prompt_tokens"], r["completion_tokens"]) for r in questions} == {(0, 0)}


def test_flags_extensions_and_score():
    b = RecordBuilder(token_budget=1000, time_limit_seconds=600)
    b.start(0)
    b.refusal(10)
    b.refusal(20, "time_up")
    b.warning(30)
    b.injection(40)
    b.extend_tokens(50, 500)
    b.extend_time(60, 300)
    b.grade([("a", True, True), ("b", False, False)])
    b.end(100)
    s = analytics.summary(b.build())
    assert (s["refusals"], s["warnings"], s["injection_flags"]) == (2, 1, 1)
    assert (s["token_budget"], s["tokens_extended"]) == (1500, 500)
    assert (s["time_limit_seconds"], s["time_extended_seconds"]) == (900, 300)
    assert (s["score"], s["tests_passed"], s["tests_total"]) == (0.5, 1, 2)


def test_session_that_never_started_has_no_time_and_no_questions():
    record = RecordBuilder().build()
    s = analytics.summary(record)
    assert (s["time_used_seconds"], s["first_question_after_seconds"]) == (0, None)
    assert s["ai_time_share"] is None and s["score"] is None
    assert analytics.time_utilisation(record) == []


def test_token_timeline_is_cumulative_and_steps_the_budget_at_the_extension():
    b = RecordBuilder(token_budget=2000)
    b.start(0)
    b.ask(60, "q1", "a1", prompt_tokens=400, completion_tokens=100, latency=2)
    b.extend_tokens(300, 1000)
    b.ask(400, "q2", "a2", prompt_tokens=900, completion_tokens=300, latency=3)
    b.end(900)
    record = b.build()
    rows = analytics.token_timeline(record)
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    assert [r["tokens"] for r in rows] == sorted(r["tokens"] for r in rows)
    assert rows[-1]["tokens"] == 400 + 100 + 900 + 300
    assert rows[-1]["t"] == 900  # the line runs to the end
    assert {r["budget"] for r in rows if r["t"] < 300} == {2000}
    assert {r["budget"] for r in rows if r["t"] >= 300} == {3000}
    actions = [(r["t"], r["label"]) for r in rows if r["kind"] == "action"]
    assert actions == [(0, "started"), (300, "tokens extended"), (900, "ended")]


def test_message_timeline_sorts_by_time_whatever_the_input_order():
    record = sample_record()
    expected = [m["id"] for m in record["messages"]]
    random.Random(7).shuffle(record["messages"])
    rows = analytics.message_timeline(record)
    assert [r["id"] for r in rows] == expected
    reply = next(r for r in rows if r["role"] == "assistant")
    assert reply["latency_seconds"] == 3.0 and reply["completion_tokens"] == 120


def test_time_utilisation_covers_the_session_and_what_was_left():
    b = RecordBuilder(time_limit_seconds=3000)
    b.start(0)
    b.ask(100, "q", "a", latency=4)
    b.pause(500)
    b.resume(800)
    b.end(2000)
    rows = analytics.time_utilisation(b.build())
    lane = [r for r in rows if r["lane"] == "session"]
    assert [r["state"] for r in lane] == ["active", "paused", "active", "unused"]
    assert all(a["end"] == b["start"] for a, b in zip(lane, lane[1:], strict=False))
    active = sum(r["seconds"] for r in lane if r["state"] == "active")
    assert active == 2000 - 300
    assert lane[-1]["seconds"] == 3000 - active
    assert [(r["start"], r["end"]) for r in rows if r["lane"] == "ai"] == [(100, 104)]


def test_figures_share_one_look_and_show_the_data():
    record = sample_record()
    figs = [
        figures.fig_token_usage(record),
        figures.fig_time_utilisation(record),
        figures.fig_message_timeline(record),
        figures.fig_compare([record, record]),
    ]
    assert all(isinstance(f, go.Figure) for f in figs)
    looks = {
        (f.layout.font.family, f.layout.template.layout.paper_bgcolor, f.layout.title.x)
        for f in figs
    }
    assert len(looks) == 1
    usage = {t.name: t for t in figs[0].data}
    timeline = analytics.token_timeline(record)
    assert list(usage["tokens used"].y) == [r["tokens"] for r in timeline]
    assert list(usage["budget"].y) == [r["budget"] for r in timeline]
    assert "tokens extended" in usage["interviewer action"].text
    assert "tokens extended" in [a.text for a in figs[0].layout.annotations]


def test_compare_keys_bars_by_session_and_refuses_mixed_challenges():
    a = sample_record()
    b = RecordBuilder(session_id="s_test000002").build()  # the same name, another session
    b["challenge"] = a["challenge"]
    fig = figures.fig_compare([a, b])
    tokens = fig.data[0]
    assert list(tokens.x) == ["s_test000001", "s_test000002"]  # two bars, not one stacked
    assert list(tokens.y) == [analytics.summary(r)["tokens_total"] for r in (a, b)]
    labels = list(fig.layout.xaxis.ticktext)
    assert all(label.startswith("Ada Lovelace<br>2026-11-25") for label in labels)
    score = fig.data[3]
    assert score.y[0] == round(a["grade"]["score"] * 100, 1)  # the score as a percentage
    b["challenge"] = {**b["challenge"], "id": "fizzbuzz"}
    with pytest.raises(ValueError, match="one challenge"):
        figures.fig_compare([a, b])
    with pytest.raises(ValueError, match="at least one"):
        figures.fig_compare([])


def test_csv_and_json_hold_one_summary_per_record():
    records = [sample_record(), RecordBuilder(session_id="s_other").build()]
    summaries = [analytics.summary(r) for r in records]
    rows = list(csv.DictReader(io.StringIO(analytics.to_csv(records))))
    assert [r["session_id"] for r in rows] == ["s_test000001", "s_other"]
    assert rows[0]["tokens_total"] == str(summaries[0]["tokens_total"])
    assert list(rows[0]) == list(summaries[0])
    assert json.loads(analytics.to_json(records)) == summaries
    assert next(csv.reader(io.StringIO(analytics.to_csv([])))) == list(summaries[0])


@pytest.mark.parametrize(
    "record, message",
    [
        ([], "must be a dict"),
        ({"messages": []}, "needs 'session'"),
        ({"session": {"id": "s_1"}, "messages": "nope"}, "'messages' must be a list"),
    ],
)
def test_bad_records_are_named(record, message):
    with pytest.raises(ValueError, match=message):
        analytics.summary(record)


def test_bad_timestamp_is_named():
    record = sample_record()
    record["messages"][0]["created_at"] = "yesterday"
    with pytest.raises(ValueError, match="'yesterday'"):
        analytics.summary(record)


def test_message_without_a_time_is_named():
    record = sample_record()
    del record["messages"][2]["created_at"]
    with pytest.raises(ValueError, match="an item of 'messages' lacks created_at"):
        analytics.summary(record)


def test_a_question_sorts_before_its_reply_whatever_the_ids():
    b = RecordBuilder()
    b.start(0)
    question, reply = b.ask(10, "q", "a")
    question["id"], reply["id"] = "m_zzz", "m_aaa"
    assert [m["role"] for m in records.messages(b.build())] == ["user", "assistant"]
