"""Provider calls in flight: the global cap over all sessions, and each session's share."""

import asyncio

import pytest
from helpers import candidate_client


@pytest.fixture
def ib_config(ib_config):
    ib_config["max_concurrent_provider_calls"] = 1
    return ib_config


async def test_global_cap_on_concurrent_provider_calls(make_session, base_url):
    a = await make_session(candidate_name="A")
    b = await make_session(candidate_name="B")
    loop = asyncio.get_running_loop()
    spans = {}

    async def ask(created, name):
        client = candidate_client(base_url, created["candidate_token"])
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", stream=True,
            messages=[{"role": "user", "content": "Go [[tokens:30]] [[slow:200]]"}])
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = loop.time()
        spans[name] = (first, loop.time())

    await asyncio.gather(ask(a, "a"), ask(b, "b"))
    (a0, a1), (b0, b1) = sorted(spans.values())
    assert b0 >= a1  # the second call reached the provider only after the first ended
