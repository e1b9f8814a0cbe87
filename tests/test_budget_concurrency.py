"""Budgets under concurrency: requests wait while tokens are only reserved, and a refusal's
sentence says which budget ran out. Real service, real SDK, the demo model as a process."""

import asyncio

import httpx
import openai
import pytest
from helpers import candidate_client, wait_for_async


@pytest.fixture
def ib_config(ib_config):
    ib_config["rate_limit_per_minute"] = 0  # these tests are about the budget, not the rate
    return ib_config


async def ask_streaming(client, text):
    """Usage of a streamed reply, or the refusal's code."""
    try:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": text}])
        usage = finish = None
        async for chunk in stream:
            usage = chunk.usage or usage
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        return usage.total_tokens, finish
    except openai.APIError as e:  # refused (an HTTP error), or cut off (an error event)
        return e.code, e.message



@pytest.mark.parametrize("budget", [1116, 20_000])
async def test_twenty_concurrent_streams_are_served_while_the_budget_can_serve_them(
        make_session, base_url, service, budget):
    created = await make_session(token_budget=budget)
    client = candidate_client(base_url, created["candidate_token"])
    results = await asyncio.gather(*(ask_streaming(client, f"Parallel {i} [[tokens:120]]")
                                     for i in range(20)))
    s = service.sessions[created["id"]]
    served = [r for r in results if isinstance(r[0], int)]
    refused = [r for r in results if not isinstance(r[0], int)]
    assert sum(total for total, _ in served) == s.ledger.used <= budget
    assert s.ledger.reserved == 0 and service.gate(s).in_flight == 0
    assert {code for code, _ in refused} <= {"budget_exhausted"}
    if budget == 20_000:
        assert not refused and all(finish == "stop" for _, finish in served)
    else:
        assert len(served) >= 3  # each settles far below what it held; others follow
        # Every refusal was true: nothing is in flight now, and the same request is still
        # refused, so the settled budget really cannot hold it.
        again = await ask_streaming(client, "Parallel 0 [[tokens:120]]")
        assert again[0] == "budget_exhausted"


async def test_a_fresh_100_token_session_is_not_told_its_budget_is_used_up(
        make_session, base_url, service):
    created = await make_session(token_budget=100)
    client = candidate_client(base_url, created["candidate_token"])
    with pytest.raises(openai.RateLimitError) as e:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Explain this. " * 20}])
    assert e.value.code == "budget_exhausted"
    assert "used up" not in e.value.message
    assert "100-token budget" in e.value.message and "at most 100" in e.value.message


async def test_a_spent_budget_is_used_up(make_session, base_url, service):
    created = await make_session(token_budget=400)
    client = candidate_client(base_url, created["candidate_token"])
    r = await client.chat.completions.create(  # capped to what is left after the prompt
        model="gpt-4o-mini", messages=[{"role": "user", "content": "All of it [[tokens:2000]]"}])
    assert r.choices[0].finish_reason == "length"
    s = service.sessions[created["id"]]
    assert s.ledger.used == r.usage.total_tokens <= 400
    with pytest.raises(openai.RateLimitError) as e:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "more?"}])
    # What is left is less than the interview's instructions alone: used up, and it says so.
    assert e.value.body["message"].startswith("Your token budget is used up")
    assert f"{400 - s.ledger.used} of your 400 tokens are left" in e.value.message
    assert e.value.response.headers["x-should-retry"] == "false"


async def test_a_message_too_big_for_what_is_left_says_so(make_session, base_url, service):
    created = await make_session(token_budget=600)
    client = candidate_client(base_url, created["candidate_token"])
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Some [[tokens:100]]"}])
    s = service.sessions[created["id"]]
    with pytest.raises(openai.RateLimitError) as e:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Explain this. " * 150}])
    assert "used up" not in e.value.message
    assert f"at most {600 - s.ledger.used} of your 600-token budget" in e.value.message


@pytest.fixture
def no_wait(ib_config):
    ib_config["queue_timeout_seconds"] = 0.0  # give up at once: no test waits for a timeout
    return ib_config


async def test_tokens_held_in_flight_are_a_retryable_refusal_that_says_so(
        no_wait, make_session, base_url, service):
    created = await make_session(token_budget=1500)
    client = candidate_client(base_url, created["candidate_token"])
    s = service.sessions[created["id"]]
    first = asyncio.ensure_future(ask_streaming(client, "Long [[tokens:150]] [[slow:50]]"))
    await wait_for_async(lambda: s.ledger.reserved > 0, "the first reply to hold its tokens")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        r = await c.post("/ib/v1/chat/completions",
                         headers={"Authorization": f"Bearer {created['candidate_token']}"},
                         json={"messages": [{"role": "user", "content": "Me too"}]})
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert err["code"] == "budget_reserved"
    assert "still running" in err["message"] and "used up" not in err["message"]
    assert int(r.headers["retry-after"]) >= 1 and "x-should-retry" not in r.headers
    total, finish = await first
    assert finish == "stop" and s.ledger.used == total and s.ledger.reserved == 0


async def test_a_waiting_request_leaves_the_line_when_its_client_goes_away(
        make_session, base_url, service):
    created = await make_session(token_budget=1500)
    client = candidate_client(base_url, created["candidate_token"])
    s = service.sessions[created["id"]]
    gate = service.gate(s)
    first = asyncio.ensure_future(ask_streaming(client, "Long [[tokens:150]] [[slow:50]]"))
    await wait_for_async(lambda: s.ledger.reserved > 0, "the first reply to hold its tokens")
    waiter = asyncio.ensure_future(ask_streaming(client, "Me too"))
    await wait_for_async(lambda: gate.waiting == 1, "the second request to wait")
    waiter.cancel()  # the client goes away
    await wait_for_async(lambda: gate.waiting == 0, "the second request to leave the line")
    total, _ = await first
    assert s.ledger.used == total and s.ledger.reserved == 0
    refusals = await service.store.run(service.store.events, s.id, ["refusal"])
    assert refusals == []  # leaving is not a refusal


async def test_pausing_refuses_requests_that_wait(make_session, base_url, service,
                                                   aio_interviewer):
    created = await make_session(token_budget=1500)
    client = candidate_client(base_url, created["candidate_token"])
    s = service.sessions[created["id"]]
    first = asyncio.ensure_future(ask_streaming(client, "Long [[tokens:150]] [[slow:50]]"))
    await wait_for_async(lambda: s.ledger.reserved > 0, "the first reply to hold its tokens")
    waiter = asyncio.ensure_future(ask_streaming(client, "Me too"))
    await wait_for_async(lambda: service.gate(s).waiting == 1, "the second request to wait")
    await aio_interviewer.post(f"/ib/api/sessions/{created['id']}/pause")
    assert (await waiter)[0] == "session_paused"
    assert (await first)[0] == "session_paused"  # the running reply was cut off
    assert s.ledger.reserved == 0 and service.gate(s).in_flight == 0


async def test_extending_the_budget_lets_a_waiting_request_in(make_session, base_url, service,
                                                              aio_interviewer):
    created = await make_session(token_budget=1300)
    client = candidate_client(base_url, created["candidate_token"])
    s = service.sessions[created["id"]]
    first = asyncio.ensure_future(ask_streaming(client, "Long [[tokens:150]] [[slow:40]]"))
    await wait_for_async(lambda: s.ledger.reserved > 0, "the first reply to hold its tokens")
    waiter = asyncio.ensure_future(ask_streaming(client, "Me too [[tokens:20]]"))
    await wait_for_async(lambda: service.gate(s).waiting == 1, "the second request to wait")
    await aio_interviewer.post(f"/ib/api/sessions/{created['id']}/extend-tokens",
                               json={"tokens": 5000})
    total, finish = await waiter
    assert finish == "stop" and not first.done()  # in before the first reply ended
    await first
