"""The token budget as ARCHITECTURE.md defines it, through the real SDK and the ledger."""

import asyncio

import openai
import pytest
from helpers import candidate_client
from hypothesis import given, settings
from hypothesis import strategies as st

from ib_extension.service import tokens
from ib_extension.service.budget import BudgetExceeded, Ledger

# ---- the ledger, property-based ---------------------------------------------------------
ops = st.lists(st.tuples(st.sampled_from(["reserve", "settle", "release", "extend"]),
                         st.integers(0, 7), st.integers(1, 400), st.floats(0, 1)), max_size=60)


@given(budget=st.integers(1, 2000), steps=ops)
@settings(max_examples=300, deadline=None)
def test_ledger_never_promises_more_than_the_budget(budget, steps):
    ledger = Ledger(budget)
    for op, key, amount, fraction in steps:
        k = f"r{key}"
        if op == "reserve":
            left = ledger.left
            try:
                ledger.reserve(k, amount)
                assert amount <= left
            except BudgetExceeded:
                assert amount > left
            except ValueError:
                assert k in ledger.reservations  # already held
        elif op == "settle" and k in ledger.reservations:
            held = ledger.reservations[k]
            used = int(held * fraction)  # a call never bills more than it reserved
            prompt = used // 2
            ledger.settle(k, prompt, used - prompt)
        elif op == "release":
            ledger.release(k)
        elif op == "extend":
            ledger.extend(amount)
            budget += amount
        assert ledger.used + ledger.reserved <= budget
        assert ledger.left == budget - ledger.used - ledger.reserved
        assert ledger.budget == budget


def test_release_frees_the_whole_reservation():
    ledger = Ledger(100)
    ledger.reserve("a", 80)
    with pytest.raises(BudgetExceeded):
        ledger.reserve("b", 30)
    ledger.release("a")
    ledger.reserve("b", 30)
    assert ledger.left == 70 and ledger.used == 0


# ---- through the service ------------------------------------------------------------------
async def test_a_500_token_session_is_served_until_spent_never_above(make_session, base_url, service):
    created = await make_session(token_budget=500)
    client = candidate_client(base_url, created["candidate_token"])
    s = service.sessions[created["id"]]
    served = 0
    for i in range(20):
        try:
            r = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Question {i}: explain [[tokens:60]] please"}])
        except openai.RateLimitError as e:
            assert e.code == "budget_exhausted"
            assert e.response.headers["x-should-retry"] == "false"
            assert "budget" in e.message.lower()
            break
        served += 1
        assert r.usage.total_tokens > 0
        assert s.ledger.used <= 500
    else:
        pytest.fail("the budget never ran out")
    assert served >= 1
    assert s.ledger.used <= 500 and s.ledger.reserved == 0
    # The settled total is exactly what the provider reported, call by call.
    rows = await service.store.run(service.store.messages, s.id)
    billed = sum((m["prompt_tokens"] or 0) + (m["completion_tokens"] or 0)
                 for m in rows if m["role"] == "assistant")
    assert billed == s.ledger.used
    # Refused again, and the SDK does not retry it (max_retries would otherwise apply).
    retrying = candidate_client(base_url, created["candidate_token"])
    retrying = retrying.with_options(max_retries=3)
    with pytest.raises(openai.RateLimitError):
        await retrying.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "more?"}])
    refusals = [e for e in await service.store.run(service.store.events, s.id, ["refusal"])]
    assert len(refusals) == 2  # one per refused call: no silent retries happened


async def test_completion_is_capped_to_what_is_left(make_session, base_url, service):
    created = await make_session(token_budget=400)
    client = candidate_client(base_url, created["candidate_token"])
    r = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Write a lot [[tokens:2000]]"}])
    assert r.choices[0].finish_reason == "length"
    assert r.usage.total_tokens <= 400
    assert service.sessions[created["id"]].ledger.used == r.usage.total_tokens


async def test_prompt_that_cannot_fit_is_refused_before_the_call(make_session, base_url, service):
    created = await make_session(token_budget=100)
    client = candidate_client(base_url, created["candidate_token"])
    long_question = "word " * 200
    assert tokens.count_tokens(long_question, "gpt-4o-mini") > 100
    with pytest.raises(openai.RateLimitError) as e:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": long_question}])
    assert e.value.code == "budget_exhausted"
    s = service.sessions[created["id"]]
    assert s.ledger.used == 0 and s.message_count == 0


async def test_parallel_requests_at_the_edge_never_overspend(make_session, base_url, service, ib_app):
    ib_app.service.rate.limit = 0  # this test is about the budget, not the rate limit
    created = await make_session(token_budget=600)
    client = candidate_client(base_url, created["candidate_token"])

    async def ask(i):
        try:
            r = await client.chat.completions.create(
                model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                messages=[{"role": "user", "content": f"Parallel {i} [[tokens:150]] [[slow:300]]"}])
            usage = None
            async for chunk in r:
                usage = chunk.usage or usage
            return usage.total_tokens
        except openai.RateLimitError as e:
            assert e.code == "budget_exhausted"
            return 0

    spent = await asyncio.gather(*(ask(i) for i in range(12)))
    s = service.sessions[created["id"]]
    assert sum(spent) == s.ledger.used <= 600
    assert any(x == 0 for x in spent) and any(x > 0 for x in spent)
    assert s.ledger.reserved == 0


async def test_provider_failure_releases_everything(make_session, base_url, service):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    with pytest.raises(openai.APIStatusError) as e:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "boom [[fault:500]]"}])
    assert e.value.status_code == 502
    assert e.value.code == "provider_error"
    assert "provider" in e.value.message and "127.0.0.1" not in e.value.message
    s = service.sessions[created["id"]]
    assert s.ledger.used == 0 and s.ledger.reserved == 0
    # and the session still works afterwards
    r = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
    assert s.ledger.used == r.usage.total_tokens
