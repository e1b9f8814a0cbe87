"""The History and Replay pages driven in-process (widgets without a browser) against a
live service: filters, server-side paging, exports, stepping."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import nbformat
import pytest
from replay_sessions import play

from ib_extension.api.client import AsyncIBClient
from ib_extension.dashboards.history import HistoryPage, ReplayPage
from ib_extension.review.replay import timeline


@pytest.fixture(scope="module")
def live(live):
    live.played = [play(live, candidate="Grace Hopper"), play(live, candidate="Alan Turing"),
                   play(live, candidate="Edsger Dijkstra", submit=False)]
    return live


def run(live, scenario):
    """Run ``scenario(client)`` on an event loop, as the dashboard kernel would."""
    async def main():
        client = AsyncIBClient(live.url, live.token)
        try:
            return await scenario(client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def names(page: HistoryPage) -> list[str]:
    return sorted(s["candidate_name"] for s in page.sessions)


def test_filters_narrow_the_list_on_the_service(live):
    async def scenario(client):
        page = HistoryPage(client)
        await page.start()
        assert page.total == 3 and len(page.rows.children) == 3
        assert "1–3 of 3" in page.position.value
        page.status.value = "completed"
        await page.pending
        assert names(page) == ["Alan Turing", "Grace Hopper"] and page.total == 2
        page.candidate.value = "turing"
        await page.pending
        assert names(page) == ["Alan Turing"]
        page.status.value = ""
        await page.pending
        assert names(page) == ["Alan Turing"]
        asked = page._request
        page.clear()  # Reset: every filter back to empty, the list read once
        await page.pending
        assert page._request == asked + 1 and page.total == 3
        page.q.value = "fizzbuzz"  # only in the conversation and the challenge
        await page.pending
        assert page.total == 3
        tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
        page.date_from.value = tomorrow
        await page.pending
        assert page.total == 0 and "No session matches" in page.message.value
        page.clear()
        await page.pending
        page.score.value = (50, 100)  # nobody was graded (custom challenges)
        await page.pending
        assert page.total == 0
        page.date_from.value, page.score.value = tomorrow, (0, 100)
        page.date_to.value = tomorrow - dt.timedelta(days=2)
        await page.pending
        assert "date is after the" in page.message.value and not page.rows.children
    run(live, scenario)


def test_pages_come_from_the_service_one_at_a_time(live):
    async def scenario(client):
        page = HistoryPage(client, page_size=2)
        await page.start()
        first = [s["id"] for s in page.sessions]
        assert len(first) == 2 and page.total == 3
        assert page.prev.disabled and not page.next.disabled
        page.next.click()
        await page.pending
        second = [s["id"] for s in page.sessions]
        assert len(second) == 1 and not set(first) & set(second)
        assert "3–3 of 3" in page.position.value
        assert page.next.disabled and not page.prev.disabled
        page.prev.click()
        await page.pending
        assert [s["id"] for s in page.sessions] == first
    run(live, scenario)


def test_exports_are_one_click_downloads(live):
    async def scenario(client):
        page = HistoryPage(client)
        await page.start()
        chosen = next(s for s in page.sessions if s["candidate_name"] == "Grace Hopper")
        downloads = page.rows.children[page.sessions.index(chosen)].children[1]
        sent = []  # what the browser would receive, as the widget sends it
        downloads.send = lambda content, buffers=None: sent.append((content, buffers))
        sid = chosen["id"]
        for fmt_name in downloads.formats:  # one build per click, the file sent back at once
            assert await downloads.deliver(fmt_name) == f"{sid}.{fmt_name}"
        files = {c["name"]: b[0].decode("utf-8") for c, b in sent}
        assert sorted(files) == sorted(f"{sid}.{f}" for f in ("ipynb", "md", "json", "html", "csv"))
        nbformat.validate(nbformat.reads(files[f"{sid}.ipynb"], as_version=4))
        assert json.loads(files[f"{sid}.json"])["session"]["id"] == sid
        assert "For interviewers only" in files[f"{sid}.md"]
        page.answer_key.value = False  # to share: without the answer key
        await downloads.deliver("md")
        assert "For interviewers only" not in sent[-1][1][0].decode("utf-8")
        for text in files.values():
            assert live.token not in text
            assert all(p["candidate_token"] not in text for p in live.played)
    run(live, scenario)


def test_the_replay_steps_through_the_session(live):
    sid = live.played[0]["id"]
    expected = timeline(live.client.record(sid))

    async def scenario(client):
        page = ReplayPage(client, session_id=sid)
        await page.start()
        assert [s.title for s in page.steps] == [s.title for s in expected]
        assert page.player.layout.display == "flex"
        assert page.back.disabled and page.first.disabled and not page.forward.disabled
        page.forward.click()
        page.forward.click()
        assert page.slider.value == 2 and "3 / " in page.where.value
        assert expected[2].title.split(" (")[0] in page.step.value
        page.back.click()
        assert page.slider.value == 1
        page.slider.value = 5  # dragging the slider moves the step too
        assert page.stepper.index == 5 and "6 / " in page.where.value
        page.last.click()
        assert page.forward.disabled and page.slider.value == len(expected) - 1
        assert f'<span class="ibh-messages">{expected[-1].messages}</span>' in page.state.value
        page.first.click()
        assert page.stepper.index == 0 and page.back.disabled
    run(live, scenario)


def test_a_replay_without_a_session_offers_the_recent_ones(live):
    played = live.played[1]["id"]

    async def scenario(client):
        page = ReplayPage(client, session_id="")
        await page.start()
        assert '<a href="history.ipynb">History</a> page' in page.message.value
        assert page.player.layout.display == "none"
        offered = [value for _, value in page.picker.options if value]
        assert sorted(offered) == sorted(p["id"] for p in live.played)
        page.picker.value = played
        await page.pending
        return page
    page = run(live, scenario)
    assert page.record["session"]["id"] == played and page.message.value == ""
    assert page.player.layout.display == "flex" and "1 / " in page.where.value


def test_the_replay_names_a_session_it_cannot_load(live):
    async def scenario(client):
        page = ReplayPage(client, session_id="s_nosuchsession")
        await page.start()
        return page
    page = run(live, scenario)
    assert "s_nosuchsession" in page.message.value and "ib-notice-error" in page.message.value
    assert page.player.layout.display == "none"


@pytest.mark.parametrize("from_url", ["../../api/status", "../../../api/contents", "..", "s_a/b"])
def test_the_replay_page_takes_no_path_from_its_url(live, from_url):
    """`?session_id=` comes from the page's URL: never a path on the service."""
    async def scenario(client):
        page = ReplayPage(client, session_id=from_url)
        await page.start()
        return page
    page = run(live, scenario)
    assert "There is no session with id" in page.message.value
    assert page.player.layout.display == "none" and page.record is None


@pytest.mark.parametrize("odd_id", ["../../api/status", "..", "."])
def test_the_client_sends_an_id_as_one_path_segment(live, odd_id):
    from ib_extension.api.client import IBClientError

    async def scenario(client):
        with pytest.raises(IBClientError) as refused:
            await client.record(odd_id)
        return refused.value
    err = run(live, scenario)
    assert (err.status, err.code) == (404, "not_found")
    assert f"There is no session with id '{odd_id}'" in err.message
