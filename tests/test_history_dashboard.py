"""The History and Replay pages' pure parts: filters, query string, HTML fragments."""

from __future__ import annotations

import datetime as dt
import html

from session_records import RecordBuilder, code_cell, notebook, sample_record

from ib_extension.dashboards import fmt
from ib_extension.dashboards.history import (
    HistoryFilters,
    message_html,
    nearby_html,
    pager_text,
    replay_href,
    requested_session,
    row_html,
    state_html,
    step_html,
)
from ib_extension.review.replay import timeline

HOSTILE = '<img src=x onerror="alert(1)">'


def test_filters_become_the_query_of_the_sessions_route():
    f = HistoryFilters(q="  two sum ", candidate="Ada", challenge_id="two-sum",
                       status="completed", date_from=dt.date(2026, 11, 1),
                       date_to=dt.date(2026, 11, 30), score=(50, 90))
    assert f.errors() == []
    assert f.params() == {"q": "two sum", "candidate": "Ada", "challenge_id": "two-sum",
                          "status": "completed", "date_from": "2026-11-01", "date_to": "2026-11-30",
                          "min_score": 0.5, "max_score": 0.9}


def test_empty_filters_ask_for_everything_ungraded_sessions_included():
    assert HistoryFilters().params() == {}


def test_impossible_filters_are_explained():
    f = HistoryFilters(date_from=dt.date(2026, 12, 2), date_to=dt.date(2026, 12, 1),
                       score=(80, 20))
    assert f.errors() == ["The 'from' date is after the 'to' date.",
                          "The score range 80–20 % is not within 0–100 %."]


def test_the_replay_page_reads_its_session_from_the_query_string(monkeypatch):
    assert requested_session("session_id=s_abc&token=t") == "s_abc"
    assert requested_session("token=t") is None
    monkeypatch.setenv("QUERY_STRING", "session_id=s_env")
    assert requested_session() == "s_env"
    assert replay_href("s_a&b=c") == "replay.ipynb?session_id=s_a%26b%3Dc"


def test_a_row_escapes_what_people_typed_and_links_the_replay():
    session = sample_record()["session"] | {"candidate_name": HOSTILE, "score": 0.75}
    session["challenge"] = {"title": HOSTILE}
    row = row_html(session)
    assert HOSTILE not in row and html.escape(HOSTILE) in row
    assert f'href="{replay_href(session["id"])}"' in row
    assert "75 %" in row


def test_pager_text():
    assert pager_text(0, 25, 3000) == "1–25 of 3,000"
    assert pager_text(2975, 25, 3000) == "2,976–3,000 of 3,000"
    assert pager_text(0, 0, 0) == "no sessions"


def test_a_message_is_inert_text_with_its_code_blocks_apart():
    rendered = message_html(f"Try this {HOSTILE}\n```python\nprint('<b>')\n```\nDone.")
    assert "<img" not in rendered and "<b>" not in rendered
    assert "<pre class=\"ibh-code\">print(&#x27;&lt;b&gt;&#x27;)</pre>" in rendered
    assert rendered.index("Try this") < rendered.index("ibh-code") < rendered.index("Done.")


def test_every_step_renders_with_untrusted_text_escaped():
    b = RecordBuilder(candidate_name=HOSTILE)
    b.start(0)
    b.activity(5, "snapshot", path=HOSTILE, notebook=notebook(code_cell(HOSTILE, id="c")))
    b.ask(10, HOSTILE, f"```\n{HOSTILE}\n```")
    b.activity(12, "cell_executed", cell_id=HOSTILE, execution_count=1, source=HOSTILE)
    b.activity(13, "paste", cell_id=HOSTILE, lines_added=30, lines=30, chars=10)
    b.submit(20, notebook(code_cell(HOSTILE + "\nmore", id="c")))
    record = b.build()
    steps = timeline(record)
    for step in steps:
        page = (step_html(step, len(steps)) + state_html(step, record["session"])
                + nearby_html(steps, step.index))
        assert "<img" not in page, step.kind
    diff = step_html(next(s for s in steps if s.kind == "submit"), len(steps))
    assert 'class="ibh-d-add">+more</div>' in diff


def test_the_state_shows_the_tokens_and_messages_so_far():
    record = sample_record()
    steps = timeline(record)
    middle = steps[len(steps) // 2]
    shown = state_html(middle, record["session"])
    assert (f'<span class="ibh-tokens">{middle.tokens:,}</span> of '
            f"{record['session']['token_budget']:,}") in shown
    assert f'<span class="ibh-time-used">{fmt.clock(middle.time_used)}</span>' in shown
    assert f'<span class="ibh-messages">{middle.messages}</span>' in shown


def test_nearby_steps_mark_the_current_one():
    steps = timeline(sample_record())
    listed = nearby_html(steps, 0)
    assert listed.count("ibh-near-current") == 1
    assert listed.count('class="ibh-near') == 5  # the first step and the 4 after it
