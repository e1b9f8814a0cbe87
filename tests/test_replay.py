"""The replay timeline, from records built in code (tests/session_records.py)."""

from __future__ import annotations

import pytest
from session_records import RecordBuilder, code_cell, markdown_cell, notebook, sample_record

from ib_extension.review.records import billed_total
from ib_extension.review.replay import FOLDED, Stepper, snapshot_diff, timeline


def _kinds(steps):
    return [s.kind for s in steps]


def test_every_message_and_event_becomes_one_step_in_time_order():
    record = sample_record()
    steps = timeline(record)
    shown_events = [e for e in record["events"] if e["type"] not in FOLDED]
    assert len(steps) == len(record["messages"]) + len(shown_events)
    assert [s.t for s in steps] == sorted(s.t for s in steps)
    assert [s.index for s in steps] == list(range(len(steps)))
    assert {"interviewer", "system", "question", "answer", "submit"} <= set(_kinds(steps))


def test_a_reply_is_placed_when_it_finished_so_work_done_meanwhile_comes_first():
    b = RecordBuilder()
    b.start(0)
    b.ask(60, "question", "answer", latency=5.0)
    b.activity(62, "cell_executed", cell_id="c1", execution_count=1, source="x = 1")
    steps = timeline(b.build())
    assert _kinds(steps)[-3:] == ["question", "cell", "answer"]
    assert [s.t for s in steps[-3:]] == [60, 62, 65]


def test_times_count_from_the_first_step_when_the_session_never_started():
    b = RecordBuilder()
    b.activity(30, "paste", cell_id="c1", lines_added=40, lines=40, chars=900)
    steps = timeline(b.build())
    assert [s.t for s in steps] == [0, 30]


def test_a_question_comes_before_its_reply_at_the_same_instant():
    b = RecordBuilder()
    b.start(0)
    b.ask(30, "q", "a", latency=0.0)
    assert _kinds(timeline(b.build()))[-2:] == ["question", "answer"]


def test_the_state_so_far_counts_tokens_messages_status_and_lock():
    b = RecordBuilder()
    b.start(0)
    b.ask(10, "q1", "a1", prompt_tokens=120, completion_tokens=30)
    b.pause(20)
    b.lock(25)
    b.resume(30)
    b.ask(40, "q2", "a2", prompt_tokens=300, completion_tokens=70)
    record = b.build()
    steps = timeline(record)
    assert steps[-1].tokens == record["session"]["tokens_used"]
    for i, step in enumerate(steps):
        so_far = [s for s in steps[: i + 1] if s.kind in ("question", "answer")]
        assert step.messages == len(so_far)
        assert step.tokens == sum(s.detail["tokens"] for s in so_far)
    by_title = {s.title: s for s in steps}
    assert by_title["Session paused"].status == "paused"
    locked = by_title["AI assistant locked"]
    assert locked.locked and locked.status == "paused"
    assert by_title["Session resumed"].status == "active"
    assert steps[-1].status == "active" and steps[-1].locked
    # the message steps carry what the service billed for them
    messages = {m["id"]: m for m in record["messages"]}
    for s in steps:
        if s.kind in ("question", "answer"):
            assert s.detail["tokens"] == billed_total(messages[s.detail["message_id"]])
    # the clock stood still while paused, and ends where the service's did
    assert by_title["Session paused"].time_used == by_title["Session resumed"].time_used == 20
    assert steps[-1].time_used == record["session"]["time_used_seconds"]


def test_snapshot_diffs_match_cells_by_id_and_ignore_markdown():
    before = notebook(markdown_cell("# notes"), code_cell("a = 1\nb = 2\nc = 3", id="keep"),
                      code_cell("print('bye')", id="gone"))
    after = notebook(code_cell("import math", id="new"), markdown_cell("# changed notes"),
                     code_cell("a = 1\nb = 20\nc = 3", id="keep"))
    diffs = {d.cell: d for d in snapshot_diff(before, after)}
    assert {k: d.change for k, d in diffs.items()} == {
        "new": "added", "keep": "changed", "gone": "removed"}
    assert diffs["new"].lines == ("+import math",)
    assert diffs["gone"].lines == ("-print('bye')",)
    changed = diffs["keep"]
    assert [line for line in changed.lines if line[:1] in "+-"] == ["-b = 2", "+b = 20"]
    assert changed.lines[0].startswith("@@")
    assert (changed.added, changed.removed) == (1, 1)


def test_cells_without_ids_are_matched_by_position():
    before = {"cells": [{"cell_type": "code", "source": ["x = 1\n", "y = 2"]}]}
    after = {"cells": [{"cell_type": "code", "source": "x = 1\ny = 3"}]}
    (only,) = snapshot_diff(before, after)
    assert only.cell == "#1" and only.change == "changed"


def test_snapshots_diff_from_the_previous_one_and_the_first_from_nothing():
    b = RecordBuilder()
    b.start(0)
    first = notebook(code_cell("def f():\n    pass", id="f"))
    second = notebook(code_cell("def f():\n    return 1", id="f"))
    b.activity(10, "snapshot", path="work.ipynb", notebook=first)
    b.activity(20, "snapshot", path="work.ipynb", notebook=second)
    b.activity(30, "snapshot", path="work.ipynb", notebook=second)
    b.activity(35, "snapshot", path="work.ipynb")  # no notebook: nothing to compare
    snaps = [s for s in timeline(b.build()) if s.kind == "snapshot"]
    assert snaps[0].detail["first"] and snaps[0].detail["diff"] == snapshot_diff(None, first)
    assert not snaps[1].detail["first"]
    assert snaps[1].detail["diff"] == snapshot_diff(first, second)
    assert snaps[2].detail["diff"] == [] and snaps[2].detail["summary"] == "no change to the code"
    assert snaps[3].detail["diff"] == [] and "no notebook" in snaps[3].detail["summary"]
    assert snaps[1].title == "Notebook saved (work.ipynb)"


def test_the_submission_diffs_the_final_notebook_against_the_last_snapshot():
    """The service keeps the submitted notebook in the record, not in the event."""
    b = RecordBuilder()
    b.start(0)
    saved = notebook(code_cell("x = 1", id="a"))
    final = notebook(code_cell("x = 2", id="a"))
    b.activity(10, "snapshot", notebook=saved)
    b.submit(20, final)
    record = b.build()
    for e in record["events"]:
        if e["type"] == "session.submitted":
            del e["payload"]["notebook"]
    (submit,) = [s for s in timeline(record) if s.kind == "submit"]
    assert submit.detail["diff"] == snapshot_diff(saved, final)
    assert submit.status == "completed"


def test_activity_steps_keep_what_the_workspace_reported():
    b = RecordBuilder()
    b.start(0)
    b.activity(5, "cell_executed", cell_id="c", execution_count=3, source="1/0", error=True,
               error_name="ZeroDivisionError", duration_ms=2)
    b.activity(6, "cell_executed", cell_id="big", execution_count=4, chars=50_000,
               sha256="ab" * 32)
    b.event(7, "activity.copy", actor="candidate", message_id="m_0001", kind="code", chars=80,
            lines=4)
    b.activity(8, "paste", cell_id="c", lines_added=20, lines=25, chars=900)
    ran, big, copied, pasted = timeline(b.build())[-4:]
    assert ran.title == "Ran cell [3] — ZeroDivisionError" and ran.detail["source"] == "1/0"
    assert big.detail["source"] is None and big.detail["sha256"] == "ab" * 32
    assert (copied.kind, copied.detail["message_id"], copied.detail["lines"]) == ("copy", "m_0001", 4)
    assert (pasted.kind, pasted.title) == ("paste", "Large paste: +20 lines")
    assert {ran.actor, big.actor, copied.actor, pasted.actor} == {"candidate"}


def test_interviewer_actions_and_service_events_are_titled_for_people():
    b = RecordBuilder()
    b.start(0)
    b.extend_time(10, 600)
    b.extend_tokens(11, 5000)
    b.warning(12, "tokens", 10)
    b.refusal(13, "budget_exhausted")
    steps = timeline(b.build())
    titles = [s.title for s in steps]
    assert titles[-4:] == ["Time extended by 10 min", "Token budget extended by 5,000",
                           "Warning: 10 % of the token budget left",
                           "Refused: refused: budget_exhausted"]
    assert [s.actor for s in steps[-4:]] == ["interviewer", "interviewer", "system", "system"]


def test_grading_shows_the_score_as_a_percentage():
    b = RecordBuilder()
    b.end(10)
    b.event(12, "grade.completed", score=0.75, passed=6, total=8, tests=[])
    b.event(13, "grade.skipped", reason="no final notebook")
    graded, skipped = timeline(b.build())[-2:]
    assert graded.title == "Graded: 75 % (6/8 tests)" and graded.actor == "system"
    assert skipped.title == "Not graded: no final notebook"


def test_a_provider_error_message_never_reaches_a_step():
    """Some OpenAI-compatible servers echo the API key in their error message."""
    b = RecordBuilder()
    b.start(0)
    b.event(5, "provider.error", message="Incorrect API key provided: sk-SECRET-123")
    steps = timeline(b.build())
    assert "sk-SECRET-123" not in repr(steps)
    assert steps[-1].title == "The AI provider failed"


def test_a_bad_record_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="'session'"):
        timeline({"messages": []})
    with pytest.raises(ValueError, match="lacks at"):
        timeline({"session": {"id": "s_1"}, "events": [{"type": "x"}]})


def test_stepping_moves_one_step_and_stays_in_range():
    steps = timeline(sample_record())
    stepper = Stepper(len(steps))
    assert stepper.at_start and stepper.back() == 0
    assert [stepper.forward() for _ in range(3)] == [1, 2, 3]
    assert stepper.back() == 2
    assert stepper.last() == len(steps) - 1 and stepper.at_end
    assert stepper.forward() == len(steps) - 1
    assert stepper.go(-5) == 0 and stepper.go(10**6) == len(steps) - 1
    assert stepper.first() == 0


def test_an_empty_timeline_has_one_place_to_stand():
    assert timeline({"session": {"id": "s_new"}, "messages": [], "events": []}) == []
    stepper = Stepper(0)
    assert (stepper.forward(), stepper.back(), stepper.last()) == (0, 0, 0)
    with pytest.raises(ValueError, match="0 or more"):
        Stepper(-1)
