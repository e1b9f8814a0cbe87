"""POST /ib/api/sessions with an Idempotency-Key: a double click or a retry makes one
session, not two."""

from __future__ import annotations

import asyncio

from helpers import session_body


async def create(client, key: str | None, **overrides):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post("/ib/api/sessions", json=session_body(**overrides), headers=headers)


async def test_the_same_key_twice_gives_the_same_session_and_token(aio_interviewer, service):
    first, again = await asyncio.gather(create(aio_interviewer, "form-1"),
                                        create(aio_interviewer, "form-1"))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["candidate_token"] == again.json()["candidate_token"]
    assert "Idempotent-Replayed" in first.headers or "Idempotent-Replayed" in again.headers
    assert len(service.sessions) == 1


async def test_without_a_key_or_with_another_key_each_post_creates(aio_interviewer, service):
    assert (await create(aio_interviewer, None)).status_code == 201
    assert (await create(aio_interviewer, None)).status_code == 201
    assert (await create(aio_interviewer, "form-2")).status_code == 201
    assert len(service.sessions) == 3


async def test_the_same_key_with_other_details_is_refused(aio_interviewer, service):
    created = await create(aio_interviewer, "form-3")
    other = await create(aio_interviewer, "form-3", candidate_name="Someone Else")
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["param"] == "Idempotency-Key" and created.json()["id"] in error["message"]
    assert len(service.sessions) == 1


async def test_a_replay_after_the_token_was_replaced_is_refused(aio_interviewer, service):
    sid = (await create(aio_interviewer, "form-4")).json()["id"]
    assert (await aio_interviewer.post(f"/ib/api/sessions/{sid}/token")).status_code == 200
    replay = await create(aio_interviewer, "form-4")
    assert replay.status_code == 409 and "/token" in replay.json()["error"]["message"]


async def test_a_malformed_key_is_refused_with_a_sentence(aio_interviewer, service):
    r = await create(aio_interviewer, "has spaces in it")
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]["message"]
    assert not service.sessions


async def test_keys_are_forgotten_after_an_hour(aio_interviewer, service, clock):
    first = (await create(aio_interviewer, "form-5")).json()["id"]
    clock.advance(3601)
    assert (await create(aio_interviewer, "form-5")).json()["id"] != first
