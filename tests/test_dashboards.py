"""The dashboards' logic without a browser: formatting, validation, timelines, cards, the
conversation's Python side. Everything shown to the interviewer from untrusted text must
come out escaped."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from session_records import RecordBuilder, code_cell, notebook, sample_record
from views import session_view

from ib_extension.api.events import check_payload, describe
from ib_extension.api.models import Event
from ib_extension.dashboards import analytics_page, controls, create, fmt, timeline
from ib_extension.dashboards.monitor import row_cells
from ib_extension.dashboards.widgets import Conversation
from ib_extension.review import analytics

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)


def session(**over) -> dict:
    """A real session view: started 600 s before NOW with 1,800 s to go, 800 of 1,000 tokens
    used."""
    return session_view(NOW, **{"used": 800, "time_limit": 1200.0, **over})


def assert_inert(html: str) -> None:
    assert "<img" not in html and "<script" not in html
    assert "&lt;img" in html


# -- formatting --------------------------------------------------------------------------

def test_a_row_escapes_names_challenges_and_counts():
    html = row_cells(session(candidate_name=XSS, challenge={"title": XSS}))
    assert_inert(html)


def test_time_left_counts_down_to_the_deadline_only_while_active():
    s = session()
    assert fmt.time_left(s, NOW) == 600
    assert fmt.time_left(s, NOW + timedelta(seconds=100)) == 500
    paused = session(status="paused")
    assert fmt.time_left(paused, NOW + timedelta(seconds=100)) == paused["time_left_seconds"]


@pytest.mark.parametrize(("left", "level"), [(0.5, "ok"), (0.25, "low"), (0.10, "critical"),
                                             (0.0, "critical")])
def test_meters_fill_with_what_is_left_and_colour_at_the_services_thresholds(left, level):
    thresholds = session()["thresholds"]  # what the service publishes: [25, 10, 5]
    assert fmt.level(left, thresholds) == level
    html = fmt.bar(1000 * left, 1000, "x", thresholds=thresholds)
    assert f"ib-bar-{level}" in html
    assert f"width:{left * 100:.1f}%" in html
    assert fmt.level(0.0, []) == "ok"  # no thresholds of its own


def test_the_time_meter_fills_with_time_left_and_says_so():
    s = session()  # 600 of 1,200 s used
    html = fmt.time_bar(s, NOW)
    assert "10:00 left" in html and "width:50.0%" in html
    later = fmt.time_bar(s, NOW + timedelta(seconds=300))  # the clock runs to the deadline
    assert "5:00 left" in later and "width:25.0%" in later and "15:00 used" in later
    assert fmt.time_used(s, NOW + timedelta(seconds=300)) == 900


def test_token_bar_shows_what_is_left_of_the_budget():
    html = fmt.token_bar(session())
    assert "200 left of 1,000" in html and "width:20.0%" in html and "800 tokens billed" in html


def test_flags_name_what_happened():
    s = session(flags={"refusals": 2, "injection": 1, "large_paste": 0, "warnings": 0})
    html = fmt.flags(s)
    assert "refused 2" in html and "injection? 1" in html and "paste" not in html
    assert "–" in fmt.flags(session())


@pytest.mark.parametrize(("seconds", "text"), [(5, "0:05"), (65, "1:05"), (3725, "1:02:05"),
                                               (None, "–")])
def test_clock(seconds, text):
    assert fmt.clock(seconds) == text


# -- controls ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["created", "active", "paused", "completed", "expired"])
def test_lifecycle_buttons_follow_the_actions_the_service_allows(status):
    s = session(status=status)
    for name in ("start", "pause", "resume", "end", "extend-time", "extend-tokens"):
        assert controls.allowed(name, s) == (name in s["allowed_actions"])
    assert controls.allowed("pause", s) == (status == "active")
    assert not controls.allowed("extend-tokens", s) or status not in fmt.ENDED


def test_lock_and_unlock_exclude_each_other():
    assert controls.allowed("lock", session()) and not controls.allowed("unlock", session())
    locked = session(locked=True)
    assert controls.allowed("unlock", locked) and not controls.allowed("lock", locked)


def test_destructive_actions_ask_first():
    asking = {a.name for a in controls.ACTIONS if a.confirm}
    assert asking == {"pause", "lock", "end"}


# -- timeline and snapshot -----------------------------------------------------------------

def event(type_: str, **payload) -> dict:
    """An event as the service logs it: the catalogue admits its payload."""
    check_payload(type_, payload)
    return Event(id=1, session_id="s_1", type=type_, actor="system", payload=payload,
                 at="2026-11-25T12:00:00.000Z").model_dump()


def test_event_rows_escape_payloads():
    html = timeline.event_row(event("injection.suspected", pattern="ignore", excerpt=XSS))
    assert_inert(html)
    assert "ib-ev-flag" in html


@pytest.mark.parametrize(("type_", "payload", "text"), [
    ("tokens.extended", {"tokens": 5000}, "Token budget extended by 5,000"),
    ("time.extended", {"seconds": 600}, "Time extended by 10 min"),
    ("warning", {"kind": "time", "threshold": 10, "left": 60}, "Warning: 10 % of the time left"),
    ("refusal", {"code": "session_paused", "message": "Paused."}, "Refused: Paused."),
])
def test_events_read_as_sentences_from_the_catalogue(type_, payload, text):
    assert timeline.describe(event(type_, **payload)) == text == describe(event(type_, **payload))


def test_categories_split_events_by_type():
    assert timeline.in_category("session.paused", "Lifecycle")
    assert timeline.in_category("refusal", "Flags")
    assert not timeline.in_category("chat.completed", "Lifecycle")
    assert all(timeline.in_category(t, "All events") for t in ("x", "session.created"))


def test_the_event_list_filters_by_category():
    t = timeline.Timeline()
    t.show([{**event("tokens.extended", tokens=500), "id": 1},
            {**event("chat.completed", message_id="m_1", prompt_tokens=10, completion_tokens=5,
                     latency_ms=900), "id": 2}])
    assert "Token budget extended by 500" in t.list.value
    assert "tokens.extended" not in t.list.value.split('data-type="tokens.extended"')[1]
    t.filter.value = "Lifecycle"
    assert "No events of this kind" in t.list.value


# -- live code ------------------------------------------------------------------------------

def test_live_code_shows_the_newest_save_highlighted_with_its_changes_marked():
    from ib_extension.dashboards.livecode import LiveCode

    first = notebook(code_cell("a = 1\nb = 2", id="c1"))
    second = notebook(code_cell("a = 1\nb = 3\nc = a + b", id="c1"),
                      code_cell(f"s = '{XSS}'", id="c2"))
    live = LiveCode(client=None)
    live.show("s_1", [{**event("activity.snapshot", notebook=first, path="a.ipynb"), "id": 1},
                      {**event("activity.cell_executed", cell_id="c1", execution_count=1,
                               source="a = 1\nb = 2"), "id": 2}])
    assert "first save" in live.current.value and 'class="ib-code"' in live.current.value
    live.add({**event("activity.snapshot", notebook=second, path="a.ipynb"), "id": 3})
    now = live.current.value
    assert_inert(now)  # Pygments escapes what it highlights
    assert "+3 −1 lines in 2 code cells" in now
    assert now.count('class="hll"') == 3  # b = 3, c = a + b, and the new cell's line
    activity = live.activity.value
    assert activity.index("Notebook saved") < activity.index("Ran cell [1]")  # newest first
    assert 'class="ibh-d-add">+b = 3</div>' in activity


# -- create ----------------------------------------------------------------------------------

def test_an_empty_draft_names_every_missing_field():
    errors = create.Draft(name=" ", minutes=0, tokens=10).errors()
    assert set(errors) == {"name", "title", "statement", "minutes", "tokens"}


def test_email_is_optional_but_checked():
    ok = create.Draft(name="Ada", title="T", statement="S")
    assert ok.errors() == {}
    assert "email" in create.Draft(name="Ada", title="T", statement="S", email="ada@").errors()


def test_library_draft_sends_the_challenge_id_and_no_text():
    d = create.Draft(name=" Ada ", source=create.LIBRARY, challenge_id="two-sum", minutes=30,
                     tokens=5000, model="gpt-4o-mini", policy="hints")
    assert d.errors() == {}
    assert d.body() == {"candidate_name": "Ada", "challenge_id": "two-sum",
                        "time_limit_seconds": 1800, "token_budget": 5000,
                        "model": "gpt-4o-mini", "assist_policy": "hints"}
    assert "challenge" in create.Draft(name="Ada", source=create.LIBRARY).errors()


def test_the_handout_carries_the_token_and_the_service():
    command, client = create.handout("http://host:8890", "ibc_tok")
    assert command == "ib lab --service-url http://host:8890 --session-token ibc_tok"
    assert "base_url = http://host:8890/ib/v1" in client and "ibc_tok" in client


def test_the_handover_is_the_link_on_a_hub_else_the_token():
    from ib_extension.api import hub as contract
    from ib_extension.api.models import CreatedSession
    from ib_extension.dashboards.handover import boxes

    view = session_view(NOW)
    link = f"http://hub:8000/hub/{contract.LINK_PATH}/{contract.LINK_PREFIX}code"

    def created(url: str | None) -> dict:  # as POST /ib/api/sessions answers
        return CreatedSession(id=view["id"], candidate_token="ibc_tok", candidate_url=url,
                              session=view).model_dump(mode="json")

    on_hub = boxes("http://hub:8000/services/interview-buddy", created(link))
    assert [b.text for b in on_hub] == [link]  # the link is the whole hand-over
    alone = boxes("http://host:8890", created(None))
    assert any("--session-token ibc_tok" in b.text for b in alone)
    assert any("api_key  = ibc_tok" in b.text for b in alone)


def test_an_existing_session_is_one_for_the_same_candidate_and_challenge():
    draft = create.Draft(name=" grace hopper ", source=create.LIBRARY, challenge_id="two-sum")
    same = session(candidate_name="Grace Hopper", challenge={"id": "two-sum"})
    assert create.same_person_and_challenge(same, draft, "")
    assert not create.same_person_and_challenge(
        session(candidate_name="Grace Hopper", challenge={"id": "lru-cache"}), draft, "")
    custom = create.Draft(name="Ada", source=create.CUSTOM, title="FizzBuzz")
    assert create.same_person_and_challenge(session(candidate_name="ada"), custom, "fizzbuzz")


def test_the_preview_shows_the_answer_key_apart():
    shown = create.challenge_markdown({"title": "T", "statement": "Do it.",
                                       "starter_code": "def f(): ...",
                                       "visible_tests": "def test_a(): ...",
                                       "hidden_tests": "def test_secret(): ...",
                                       "interviewer_notes": "Ask about edge cases."})
    assert shown.index("def f()") < shown.index("test_a") < shown.index("For you only")
    assert shown.index("For you only") < shown.index("test_secret") < shown.index("edge cases")


# -- analytics page --------------------------------------------------------------------------

def test_cards_show_the_summary_numbers():
    record = sample_record()
    summary = analytics.summary(record)
    cards = dict((label, (value, detail)) for label, value, detail in
                 analytics_page.cards(summary))
    assert cards["Tokens billed"][0] == f"{summary['tokens_total']:,}"
    assert cards["Time used"][0] == fmt.clock(record["session"]["time_used_seconds"])
    assert cards["Paused"][0] == fmt.clock(record["session"]["time_paused_seconds"])
    assert cards["Messages"][0] == f"{summary['messages_user']} ↔ {summary['messages_assistant']}"
    assert cards["Refusals"][0] == str(summary["refusals"])


def test_cards_escape_and_the_export_link_carries_the_file():
    b = RecordBuilder()
    b.start(0)
    record = b.build()
    record["session"]["candidate_name"] = XSS
    html = analytics_page.download_link(analytics.to_csv([record]), "x.csv", "text/csv", "CSV")
    data = re.search(r'base64,([^"]+)"', html).group(1)
    assert base64.b64decode(data).decode() == analytics.to_csv([record])
    assert "<img" not in analytics_page.cards_html(analytics.summary(record))


def test_the_page_reads_the_session_from_the_query_string():
    assert analytics_page.requested_session("token=t&session=s_9") == "s_9"
    assert analytics_page.requested_session("token=t") is None


def test_sessions_compare_by_library_id_else_by_custom_title():
    a = session(challenge={"id": "two-sum", "title": "Two Sum"})
    b = session(challenge={"id": "two-sum", "title": "Renamed"})
    c = session(challenge={"id": None, "title": "Two Sum"})
    key = analytics_page.challenge_key
    assert key(a) == key(b) != key(c)


# -- the conversation's Python side ------------------------------------------------------------

def test_conversation_keeps_the_services_order_when_question_and_reply_share_a_millisecond():
    b = RecordBuilder()
    question, reply = b.ask(5, "What now?", "Try a loop.")
    # The service's ids are random: here the reply's sorts before the question's.
    question["id"], reply["id"] = "m_ffffffffffff", "m_000000000001"
    assert question["created_at"] == reply["created_at"]
    c = Conversation()
    c.show(b.session_id, [reply, question])
    assert [m["role"] for m in c.messages] == ["user", "assistant"]
    later, _ = b.ask(5, "And then?", "Return it.")
    c.upsert(later)
    c.delta("m_live", "Ret")  # a reply known only from its first words goes last
    assert [m["content"] for m in c.messages][:3] == ["What now?", "Try a loop.", "And then?"]
    assert c.messages[3]["id"] == "m_live"


def test_conversation_keeps_streamed_text():
    b = RecordBuilder()
    b.ask(1, "Hi?", "Hi.")
    c = Conversation()
    c.show(b.session_id, b.messages)
    c.delta("m_0003", "Hel")  # a reply whose message item has not arrived yet
    c.delta("m_0003", "lo")
    assert c.text_of("m_0003") == "Hello"
    streaming = b.message(3, "assistant", "", status="streaming")
    # A re-read that still has the reply as streaming does not undo what arrived.
    c.merge([streaming])
    assert c.text_of("m_0003") == "Hello"
    c.upsert({**streaming, "content": "Hello!", "status": "complete"})
    assert c.text_of("m_0003") == "Hello!"
    c.merge([{**streaming, "content": "Hello"}])
    assert c.text_of("m_0003") == "Hello!"  # a finished message is not replaced by an older read
    assert [m["id"] for m in c.messages] == ["m_0001", "m_0002", "m_0003"]


# -- the monitor's overview ----------------------------------------------------------------------

def test_overview_keeps_a_stable_newest_first_order_and_filters():
    from ib_extension.dashboards.monitor import Overview

    chosen = []
    o = Overview(chosen.append)
    o.load([session(id="s_done", candidate_name="Zed", status="completed", elapsed=900),
            session(id="s_new", candidate_name="Amy", status="created", elapsed=60),
            session(id="s_run", candidate_name="Bob", status="active", elapsed=300,
                    challenge={"title": "LRU cache"})])
    assert [s["id"] for s in o.visible()] == ["s_new", "s_run", "s_done"]  # newest first
    assert len(o.body.children) == 3
    assert "s_run" in o.rows["s_run"][2].value  # the id is on the row
    o.status.value = "completed"
    assert [r for r in o.body.children] == [o.rows["s_done"][0]]
    o.status.value = ""
    o.search.value = "lru"
    assert [s["id"] for s in o.visible()] == ["s_run"]
    o.search.value = "s_do"  # an id finds its session
    assert [s["id"] for s in o.visible()] == ["s_done"]
    o.search.value = "nobody"
    assert o.body.children == () and "No session matches" in o.empty.value
    o.search.value = ""
    o.rows["s_new"][1].click()
    assert chosen == ["s_new"]
    # A change arrives: the row is updated in place, and no row moves.
    order = list(o.body.children)
    row = o.rows["s_run"][0]
    o.update(session(id="s_run", candidate_name="Bob", status="paused", elapsed=300))
    assert o.rows["s_run"][0] is row and "ib-status-paused" in o.rows["s_run"][2].value
    assert list(o.body.children) == order
