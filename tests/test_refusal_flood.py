"""A flood of refused requests is counted, not stored one by one: the log, the live feed and
the interviewer's views stay small (benchmarks/refusal_flood.py measures the speed)."""

import asyncio

import httpx
import pytest

from ib_extension.service.refusals import KEEP_PER_WINDOW


@pytest.fixture
def ib_config(ib_config):
    ib_config["rate_limit_per_minute"] = 1
    return ib_config


async def test_refusals_beyond_the_first_few_a_minute_are_counted(
        make_session, base_url, service, aio_interviewer, clock):
    created = await make_session()
    sid = created["id"]
    headers = {"Authorization": f"Bearer {created['candidate_token']}"}
    body = {"messages": [{"role": "user", "content": "hi"}]}
    feed_before = service.feed.cursor
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        first = await c.post("/ib/v1/chat/completions", json=body, headers=headers)
        assert first.status_code == 200
        feed_after_first = service.feed.cursor
        codes = await asyncio.gather(*(c.post("/ib/v1/chat/completions", json=body,
                                              headers=headers) for _ in range(200)))
    assert {r.json()["error"]["code"] for r in codes} == {"rate_limited"}
    stored = await service.store.run(service.store.events, sid, ["refusal"])
    assert len(stored) == KEEP_PER_WINDOW
    # The feed grew by a few items, not by hundreds.
    assert service.feed.cursor - feed_after_first <= 3 * KEEP_PER_WINDOW
    assert feed_after_first > feed_before
    s = service.sessions[sid]
    assert s.flags["refusals"] == 200  # the count itself is exact
    clock.advance(60)
    service.tick()  # the minute is over: one event sums up the rest
    summary = await service.store.run(service.store.events, sid, ["refusals.counted"])
    assert [e["payload"]["count"] for e in summary] == [200 - KEEP_PER_WINDOW]
    assert summary[0]["payload"]["codes"] == {"rate_limited": 200 - KEEP_PER_WINDOW}
    listed = (await aio_interviewer.get(f"/ib/api/sessions/{sid}")).json()
    assert listed["flags"]["refusals"] == 200


async def test_counted_refusals_stay_pending_until_the_minute_ends(make_session, base_url,
                                                                 service):
    created = await make_session()
    headers = {"Authorization": f"Bearer {created['candidate_token']}"}
    body = {"messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        for _ in range(KEEP_PER_WINDOW + 4):
            await c.post("/ib/v1/chat/completions", json=body, headers=headers)
    sid = created["id"]
    assert await service.store.run(service.store.events, sid, ["refusals.counted"]) == []
    # What Service.close() stores when the service stops before the minute ends:
    pending = service.refusals.due(service.now(), everything=True)
    assert [summary["count"] for _, summary in pending] == [3]  # 1 served, 5 kept, 3 counted
