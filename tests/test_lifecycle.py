"""Session lifecycle and the service clock, driven by a ManualClock: no test sleeps."""

import httpx
import openai
import pytest
from helpers import candidate_client

from ib_extension.api.errors import IBError
from ib_extension.service.clock import ManualClock
from ib_extension.service.sessions import TRANSITIONS


async def act(client, sid, action, **body):
    path = f"/ib/api/sessions/{sid}/{action}"
    r = await client.post(path, json=body or None)
    return r


async def test_reads_do_not_start_the_clock_opening_the_workspace_does(make_session, base_url,
                                                                          service, clock):
    """A workspace reads the session, the conversation and the feed at start-up, before
    anyone looks at it: only the candidate opening it in a browser starts the clock."""
    created = await make_session(time_limit_seconds=600)
    s = service.sessions[created["id"]]
    clock.advance(300)  # waiting before the candidate arrives costs nothing
    headers = {"Authorization": f"Bearer {created['candidate_token']}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as c:
        for path in ("/ib/api/me", "/ib/api/me/messages", "/ib/api/me/feed", "/ib/v1/models"):
            assert (await c.get(path)).status_code == 200
        assert s.status == "created" and s.time_left(clock.now()) == 600
        opened = (await c.post("/ib/api/me/opened")).json()
    assert opened["status"] == "active" and opened["started_at"] is not None
    assert [e.type for e in await service.events(s.id, ["workspace.opened"])] == ["workspace.opened"]
    [started] = await service.events(s.id, ["session.started"])
    assert started.actor == "candidate"
    clock.advance(100)
    assert s.time_left(clock.now()) == 500


async def test_the_first_ai_request_starts_the_clock_too(make_session, base_url, service):
    created = await make_session(time_limit_seconds=600)
    client = candidate_client(base_url, created["candidate_token"])
    await client.chat.completions.create(model="gpt-4o-mini",
                                         messages=[{"role": "user", "content": "hi"}])
    assert service.sessions[created["id"]].status == "active"


async def test_pause_excludes_time_and_resume_continues(make_session, aio_interviewer, service, clock):
    sid = (await make_session(time_limit_seconds=600))["id"]
    assert (await act(aio_interviewer, sid, "start")).status_code == 200
    clock.advance(100)
    r = await act(aio_interviewer, sid, "pause")
    assert r.json()["status"] == "paused" and r.json()["deadline"] is None
    clock.advance(1000)  # paused time is not interview time
    service.tick()
    assert service.sessions[sid].status == "paused"
    r = await act(aio_interviewer, sid, "resume")
    assert r.json()["time_left_seconds"] == 500
    clock.advance(499)
    service.tick()
    assert service.sessions[sid].status == "active"
    clock.advance(1)
    service.tick()  # the service expires sessions by itself
    s = service.sessions[sid]
    assert s.status == "expired" and s.end_reason == "time_up" and s.time_left(clock.now()) == 0
    events = [e["type"] for e in await service.store.run(service.store.events, sid, None)]
    assert events[:4] == ["session.created", "session.started", "session.paused", "session.resumed"]
    assert "session.expired" in events


async def test_expiry_freezes_the_clock_at_the_limit(make_session, aio_interviewer, service, clock):
    sid = (await make_session(time_limit_seconds=600))["id"]
    await act(aio_interviewer, sid, "start")
    clock.advance(650)  # the ticker ran late
    service.tick()
    s = service.sessions[sid]
    assert s.time_used(clock.now()) == 600
    clock.advance(1000)
    assert s.time_used(clock.now()) == 600


async def test_extending_an_expired_session_reopens_it(make_session, aio_interviewer, service, clock):
    created = await make_session(time_limit_seconds=600)
    sid = created["id"]
    await act(aio_interviewer, sid, "start")
    clock.advance(600)
    service.tick()
    client = candidate_client(base_url=aio_interviewer.base_url.__str__().rstrip("/"),
                              token=created["candidate_token"])
    with pytest.raises(openai.PermissionDeniedError) as e:
        await client.chat.completions.create(model="gpt-4o-mini",
                                             messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "time_up"
    clock.advance(120)  # the interviewer takes two minutes to decide
    r = await act(aio_interviewer, sid, "extend-time", seconds=300)
    assert r.json()["status"] == "active"
    assert r.json()["time_left_seconds"] == 300
    await client.chat.completions.create(model="gpt-4o-mini",
                                         messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_each_transition_allows_exactly_its_sources(action):
    from ib_extension.service.budget import Ledger
    from ib_extension.service.sessions import Session

    sources, target = TRANSITIONS[action]
    for status in ("created", "active", "paused", "completed", "expired"):
        s = Session(id="s_x", candidate_name="x", candidate_email=None, challenge={}, model="m",
                    assist_policy="full", time_limit_seconds=60, ledger=Ledger(100),
                    token_hash="h", created_at=0, status=status, started_at=0)
        if status in sources:
            s.apply(action, 10)
            assert s.status == target
        else:
            with pytest.raises(IBError) as e:
                s.apply(action, 10)
            assert e.value.status == 409


async def test_lock_blocks_chat_but_not_the_clock(make_session, aio_interviewer, base_url, clock, service):
    created = await make_session(time_limit_seconds=600)
    sid = created["id"]
    await act(aio_interviewer, sid, "start")
    r = await act(aio_interviewer, sid, "lock")
    assert r.json()["locked"] is True
    assert (await act(aio_interviewer, sid, "lock")).status_code == 409
    client = candidate_client(base_url, created["candidate_token"])
    with pytest.raises(openai.PermissionDeniedError) as e:
        await client.chat.completions.create(model="gpt-4o-mini",
                                             messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "session_locked"
    assert e.value.response.headers["x-should-retry"] == "false"
    clock.advance(60)
    assert service.sessions[sid].time_left(clock.now()) == 540
    await act(aio_interviewer, sid, "unlock")
    await client.chat.completions.create(model="gpt-4o-mini",
                                         messages=[{"role": "user", "content": "hi"}])


async def test_refusal_codes_per_state(make_session, aio_interviewer, base_url):
    created = await make_session()
    sid = created["id"]
    client = candidate_client(base_url, created["candidate_token"])
    ask = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    await act(aio_interviewer, sid, "start")
    await act(aio_interviewer, sid, "pause")
    with pytest.raises(openai.ConflictError) as e:
        await client.chat.completions.create(**ask)
    assert e.value.code == "session_paused" and "paused" in e.value.message
    await act(aio_interviewer, sid, "end")
    with pytest.raises(openai.PermissionDeniedError) as e:
        await client.chat.completions.create(**ask)
    assert e.value.code == "session_ended"
    assert (await act(aio_interviewer, sid, "extend-tokens", tokens=100)).status_code == 409


async def test_warnings_at_25_10_5_percent_of_time(make_session, aio_interviewer, service, clock):
    sid = (await make_session(time_limit_seconds=1000))["id"]
    await act(aio_interviewer, sid, "start")
    seen = []
    for step in (700, 60, 100, 50, 40, 10):  # left: 300, 240, 140, 90, 50, 40
        clock.advance(step)
        service.tick()
        seen = [(w["kind"], w["threshold"]) for w in service.sessions[sid].warnings]
    assert seen == [("time", 25), ("time", 10), ("time", 5)]
    events = await service.store.run(service.store.events, sid, ["warning"])
    assert [e["payload"]["threshold"] for e in events] == [25, 10, 5]
    assert all(e["payload"]["kind"] == "time" for e in events)


async def test_token_warnings_and_rearming_after_extension(make_session, base_url, aio_interviewer, service):
    created = await make_session(token_budget=1000)
    client = candidate_client(base_url, created["candidate_token"])
    s = service.sessions[created["id"]]
    while s.ledger.settled_left / s.ledger.budget > 0.25:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "user", "content": "Tell me more [[tokens:80]]"}])
    assert ("tokens", 25) in {(w["kind"], w["threshold"]) for w in s.warnings}
    await act(aio_interviewer, created["id"], "extend-tokens", tokens=10_000)
    assert not any(kind == "tokens" for kind, _ in s.warned)  # re-armed by the extension


def test_manual_clock_cannot_go_back():
    with pytest.raises(ValueError):
        ManualClock().advance(-1)
