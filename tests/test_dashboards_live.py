"""The dashboards' pages against a real `ib serve` (with the offline demo model), driven
from Python without a browser: what each page reads, shows and sends."""

from __future__ import annotations

import openai
import pytest
from session_records import code_cell, notebook

from ib_extension.api.client import AsyncIBClient, IBClient, IBClientError
from ib_extension.dashboards import AnalyticsPage, CreatePage, Monitor, controls
from ib_extension.dashboards.analytics_page import PLOTLY_MIME
from ib_extension.dashboards.live import FeedFollower


@pytest.fixture
def client(live):
    return AsyncIBClient(live.url, live.token)


def ask(live, created, text: str) -> None:
    openai.OpenAI(base_url=live.url + "/ib/v1", api_key=created["candidate_token"],
                  max_retries=0).chat.completions.create(
        model=created["session"]["model"], messages=[{"role": "user", "content": text}])


async def test_follower_delivers_changes_after_its_mark_and_resets_on_a_new_epoch(live, client):
    seen, resets = [], []

    async def on_reset():
        resets.append(True)

    follower = FeedFollower(client, seen.extend, on_reset, poll_timeout=5)
    await follower.mark()
    created = live.create_session(candidate_name="Feed Reader")
    while not any(i["kind"] == "session" and i["session_id"] == created["id"] for i in seen):
        await follower.poll_once()
    assert resets == []
    follower.epoch = "an-epoch-from-before-a-restart"
    assert await follower.poll_once() == []
    assert resets == [True]
    await client.aclose()


async def test_monitor_reads_sessions_follows_the_feed_and_shows_the_selected_one(live, client):
    first = live.create_session(candidate_name="Monitored One")
    monitor = Monitor(client)
    monitor.follower.poll_timeout = 5  # polled step by step here, not by its task
    await monitor.follower.mark()
    await monitor.reload()
    assert first["id"] in monitor.overview.rows
    second = live.create_session(candidate_name="Monitored Two")
    while second["id"] not in monitor.overview.rows:
        await monitor.follower.poll_once()

    monitor.selected = first["id"]
    await monitor.load_selected(first["id"])
    assert monitor.panel.widget.layout.display == "flex"
    ask(live, first, "What now? [[reply:Try a loop.]]")
    while not any(m["content"] == "Try a loop." for m in monitor.panel.conversation.messages):
        await monitor.follower.poll_once()
    assert [m["role"] for m in monitor.panel.conversation.messages] == ["user", "assistant"]
    assert "AI reply: " in monitor.panel.timeline.list.value  # the catalogue's sentence
    assert "Monitored One" in monitor.panel.title.value
    # The candidate's workspace saves: the code shows up highlighted, as inert text.
    me = IBClient(live.url, first["candidate_token"], scheme="bearer")
    me.activity("activity.snapshot", {"path": "solution.ipynb", "notebook": notebook(
        code_cell("def fizzbuzz(n):\n    return ['<b>1</b>']", id="solve"))})
    code = monitor.panel.code
    while "fizzbuzz" not in code.current.value:
        await monitor.follower.poll_once()
    assert "&lt;b&gt;1&lt;/b&gt;" in code.current.value
    assert "solution.ipynb" in code.current.value
    # A big save reaches the feed as a reference, read once; its change is marked.
    grown = "def fizzbuzz(n):\n    return ['<b>1</b>']\n" + "# padding line\n" * 400
    me.activity("activity.snapshot", {"path": "solution.ipynb",
                                      "notebook": notebook(code_cell(grown, id="solve"))})
    me.close()
    while "padding line" not in code.current.value:
        await monitor.follower.poll_once()
    assert "+400 −0 lines in 1 code cell" in code.current.value
    assert code.current.value.count('class="hll"') == 400
    # Another session's conversation does not leak into the selected one's.
    ask(live, second, "Other [[reply:Elsewhere.]]")
    while monitor.overview.sessions[second["id"]]["message_count"] < 2:
        await monitor.follower.poll_once()
    assert all(m["content"] != "Elsewhere." for m in monitor.panel.conversation.messages)
    await client.aclose()


async def test_controls_act_and_report_refusals_in_the_services_words(live, client):
    created = live.create_session(candidate_name="Controlled")
    updates = []
    ctl = controls.Controls(client, updates.append)
    ctl.set_session(created["session"])
    start = next(a for a in controls.ACTIONS if a.name == "start")
    await ctl.run(start)
    assert updates[-1]["status"] == "active"
    assert start.done in ctl.result.value
    ctl.tokens.value = 1234
    await ctl.extend_tokens()
    assert updates[-1]["token_budget"] == created["session"]["token_budget"] + 1234
    # The service refuses a second start: its sentence is shown, nothing else changes.
    await ctl.run(start)
    with pytest.raises(IBClientError) as refused:
        live.client.action(created["id"], "start")
    assert refused.value.message in ctl.result.value.replace("&#x27;", "'")
    assert "ib-notice-error" in ctl.result.value
    await client.aclose()


async def test_create_page_offers_the_services_models_and_creates_the_session(live, client):
    page = CreatePage(client)
    await page.start()
    models = live.client.models()
    assert list(page.model.options) == models["models"]
    assert page.model.value == models["default"]
    assert [v for _, v in page.policy.options] == models["assist_policies"]

    assert await page.create() is None  # nothing filled in: nothing sent
    assert "Enter the candidate" in page.name_err.value
    page.source.value = "custom"
    page.name.value = "Created Here"
    page.title.value = "Reverse a list"
    page.statement.value = "Write `rev(xs)`."
    page.minutes.value = 20
    created = await page.create()
    assert created is not None
    listed = live.client.session(created["id"])
    assert (listed["candidate_name"], listed["time_limit_seconds"]) == ("Created Here", 1200)
    assert listed["challenge"]["title"] == "Reverse a list"
    assert created["candidate_token"] in page.result.children[1].text
    await client.aclose()


async def test_analytics_page_summarises_and_compares_a_challenge(live, client):
    made = []
    for name in ("Analysed A", "Analysed B"):
        s = live.create_session(candidate_name=name, challenge_title="Compared Challenge")
        ask(live, s, "q [[tokens:30]]")
        live.client.action(s["id"], "end")
        made.append(s)
    page = AnalyticsPage(client, session_id=made[0]["id"])
    await page.start()
    assert page.picker.value == made[0]["id"]
    assert page.record["session"]["id"] == made[0]["id"]
    assert "1 ↔ 1" in page.cards.value
    await page.drawing  # charts and the comparison come after the first paint
    assert {r["session"]["id"] for r in page.group} == {s["id"] for s in made}
    charts = [*page.charts.children, page.compare.children[1]]
    assert [len(c.outputs) for c in charts] == [1, 1, 1, 1]
    assert all(PLOTLY_MIME in c.outputs[0]["data"] for c in charts)
    assert "2 candidates on Compared Challenge" in page.compare.children[0].value
    assert "CSV (2 sessions)" in page.exports.value
    await client.aclose()
