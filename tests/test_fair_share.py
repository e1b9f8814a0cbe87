"""One candidate cannot hold every provider slot: a session has at most
`max_provider_calls_per_session` calls in flight; its other requests wait in its own line."""

import asyncio

import pytest
from helpers import candidate_client


@pytest.fixture
def ib_config(ib_config):
    ib_config["max_concurrent_provider_calls"] = 2
    ib_config["max_provider_calls_per_session"] = 1
    ib_config["rate_limit_per_minute"] = 0
    return ib_config


async def test_a_flooding_session_does_not_starve_another(make_session, base_url, service):
    flooder = await make_session(candidate_name="Flooder", token_budget=100_000)
    other = await make_session(candidate_name="Other")
    busy = candidate_client(base_url, flooder["candidate_token"])
    calm = candidate_client(base_url, other["candidate_token"])
    s = service.sessions[flooder["id"]]
    completed = []

    async def flood(i):
        stream = await busy.chat.completions.create(
            model="gpt-4o-mini", stream=True,
            messages=[{"role": "user", "content": f"Flood {i} [[tokens:100]] [[slow:50]]"}])
        async for _ in stream:
            pass
        completed.append(i)

    floods = [asyncio.ensure_future(flood(i)) for i in range(4)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while service.gate(s).waiting < 3:  # one call in flight, three in the flooder's own line
        assert loop.time() < deadline, "the flooder's requests never queued"
        await asyncio.sleep(0.01)
    stream = await calm.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Quick one"}])
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    # The other candidate got its first token while the flooder's first reply still ran.
    assert completed == [] and service.gate(s).in_flight == 1
    await stream.close()
    await asyncio.gather(*floods)
    assert sorted(completed) == [0, 1, 2, 3] and s.ledger.reserved == 0
