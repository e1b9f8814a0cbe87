"""One candidate cannot exhaust memory or disk (issue 9, item 4): bodies are refused on
their headers before they are read, each session's activity has a quota, and the feed
carries references to big payloads instead of the payloads."""

import asyncio
import json

import httpx
import pytest
from helpers import INTERVIEWER_TOKEN
from test_api_errors import assert_error_shape

QUOTA = {"activity_event_quota": 8, "snapshot_quota": 3, "activity_bytes_quota": 400_000}
HUNDRED_MB = 100 * 1024 * 1024


@pytest.fixture
def ib_config(ib_config):
    return {**ib_config, **QUOTA}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def raw_request(base_url: str, head: str) -> str:
    """Send only a request's headers (announcing a body that never comes) and return the
    status line of the answer: the service must answer without waiting for the body."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(head.replace(" /ib/", f" {url.raw_path.decode().rstrip('/')}/ib/", 1)
                     .encode() + b"\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 20)
    finally:
        writer.close()
    return status.decode().strip()


@pytest.mark.parametrize("auth", ["", "Authorization: Bearer not-a-session-token\r\n"])
async def test_anonymous_100_mb_body_is_refused_before_it_is_read(base_url, service, auth):
    status = await raw_request(base_url, (
        f"POST /ib/api/me/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {HUNDRED_MB}\r\n"))
    assert status.startswith("HTTP/1.1 401"), status


async def test_a_candidates_body_over_the_route_limit_is_refused_on_its_headers(
        base_url, make_session, service):
    created = await make_session()
    status = await raw_request(base_url, (
        "POST /ib/api/me/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {created['candidate_token']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {HUNDRED_MB}\r\n"))
    assert status.startswith("HTTP/1.1 413"), status
    assert service.usage[created["id"]].events == 0


async def test_a_chunked_body_over_the_limit_is_dropped_and_refused(base_url, make_session,
                                                                    service):
    created = await make_session()

    async def chunks():  # no Content-Length: the size shows only as it arrives
        yield b'{"type": "activity.paste", "payload": {"text": "'
        for _ in range(6):
            yield b"x" * 1_000_000
        yield b'"}}'

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        r = await c.post("/ib/api/me/events", content=chunks(),
                         headers=bearer(created["candidate_token"]))
    err = assert_error_shape(r, 413, "payload_too_large")
    assert "the limit here is 5000000" in err["message"]
    assert service.usage[created["id"]].events == 0


async def post_activity(c: httpx.AsyncClient, token: str, type_: str, payload: dict):
    return await c.post("/ib/api/me/events", json={"type": type_, "payload": payload},
                        headers=bearer(token))


async def test_activity_quota_refuses_clearly_and_keeps_what_was_logged(
        base_url, make_session, service, aio_interviewer):
    flooder, other = await make_session(), await make_session(candidate_name="Other")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        codes = [(await post_activity(c, flooder["candidate_token"], "activity.paste",
                                      {"chars": i})).status_code for i in range(12)]
        refused = await post_activity(c, flooder["candidate_token"], "activity.copy", {})
        unharmed = await post_activity(c, other["candidate_token"], "activity.copy", {})
    assert codes == [201] * QUOTA["activity_event_quota"] + [429] * 4
    err = assert_error_shape(refused, 429, "quota_exceeded")
    assert err["message"] == "This session has recorded its 8 activity events; no more are kept."
    assert refused.headers["x-should-retry"] == "false"
    assert unharmed.status_code == 201
    events = (await aio_interviewer.get(
        f"/ib/api/sessions/{flooder['id']}/events")).json()["events"]
    pastes = [e["payload"]["chars"] for e in events if e["type"] == "activity.paste"]
    assert pastes == list(range(8))  # everything accepted is kept, in order
    reached = [e for e in events if e["type"] == "quota.reached"]
    assert [e["payload"]["limit"] for e in reached] == ["events"]  # announced once


async def test_snapshot_and_byte_quotas(base_url, make_session, service):
    created = await make_session()
    token = created["candidate_token"]
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        snaps = [(await post_activity(c, token, "activity.snapshot",
                                      {"path": "a.ipynb", "notebook": notebook})).status_code
                 for _ in range(4)]
        big = {"text": "y" * 300_000}
        first = await post_activity(c, token, "activity.paste", big)
        second = await post_activity(c, token, "activity.paste", big)
    assert snaps == [201, 201, 201, 429]
    assert first.status_code == 201
    err = assert_error_shape(second, 429, "quota_exceeded")
    assert "past its 400000 bytes" in err["message"]
    stored = await service.store.run(service.store.activity_usage)
    usage = service.usage[created["id"]]
    assert [(r[1], r[2], r[3]) for r in stored if r[0] == created["id"]] == [
        (usage.events, usage.snapshots, usage.bytes)]  # what a restart would count


async def test_feed_carries_a_reference_to_a_big_payload(base_url, make_session,
                                                         aio_interviewer):
    created = await make_session()
    start = (await aio_interviewer.get("/ib/api/feed")).json()
    payload = {"path": "big.ipynb", "notebook": {"cells": [{"source": "z" * 100_000}]}}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        r = await post_activity(c, created["candidate_token"], "activity.snapshot", payload)
    assert r.status_code == 201 and len(r.content) < 2000  # no echo of what was sent
    page = (await aio_interviewer.get("/ib/api/feed", params={
        "cursor": start["cursor"], "epoch": start["epoch"], "timeout": 0})).json()
    [item] = [i for i in page["items"] if i["kind"] == "event"
              and i["data"]["type"] == "activity.snapshot"]
    assert len(json.dumps(page)) < 10_000
    ref = item["data"]
    assert ref["payload"] == {} and ref["payload_bytes"] == len(json.dumps(payload))
    full = (await aio_interviewer.get(ref["payload_url"])).json()
    assert full["payload"] == payload and full["id"] == ref["id"]
    missing = await aio_interviewer.get(f"/ib/api/sessions/{created['id']}/events/999999")
    assert_error_shape(missing, 404, "not_found")


async def test_xsrf_exemption_needs_an_authenticating_header(base_url, service):
    """The interviewer's login cookie plus an Authorization header that authenticates
    nothing: still a cookie request, so without an XSRF token it is refused."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as browser:
        login = await browser.get("/api/status", params={"token": INTERVIEWER_TOKEN})
        assert login.status_code == 200 and browser.cookies  # logged in by cookie
        forged = await browser.post("/ib/api/sessions", headers={
            "Authorization": "Bearer made-up"}, json={
            "candidate_name": "Forged", "time_limit_seconds": 600, "token_budget": 1000,
            "challenge_text": "x"})
    assert forged.status_code == 403, forged.text
    assert "xsrf" in forged.text.lower()
    assert not service.sessions
