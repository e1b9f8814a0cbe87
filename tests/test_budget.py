"""The token budget as ARCHITECTURE.md defines it, through the real SDK and the ledger."""

import asyncio

import openai
import pytest
from helpers import candidate_client
from hypothesis import given, settings
from hypothesis import strategies as st

from ib_extension.service import tokens
from ib_extension.service.admission import Gate, NotAdmitted
from ib_extension.service.budget import BudgetExceeded, Ledger

# ---- the ledger, property-based ---------------------------------------------------------
ops = st.lists(st.tuples(st.sampled_from(["admit", "settle", "release", "extend"]),
                         st.integers(0, 7), st.integers(1, 400), st.integers(1, 600),
                         st.floats(0, 2)), max_size=60)


@given(budget=st.integers(1, 2000), steps=ops)
@settings(max_examples=300, deadline=None)
def test_ledger_never_charges_more_than_the_budget(budget, steps):
    ledger = Ledger(budget)
    for op, key, amount, wanted, fraction in steps:
        k = f"r{key}"
        if op == "admit" and k not in ledger.reservations:
            decision = ledger.admit(amount, wanted)
            alone = min(wanted, ledger.settled_left - amount)
            if decision.action == "refuse":
                assert alone < 1  # refused only when even the settled budget cannot hold it
            elif decision.action == "serve":
                assert decision.cap == alone and amount + decision.cap <= ledger.left
                ledger.reserve(k, amount + decision.cap)
            else:
                assert ledger.reserved > 0  # waits only while something in flight can free tokens
                assert amount + alone > ledger.left
        elif op == "settle" and k in ledger.reservations:
            held = ledger.reservations[k]
            billed = int(held * fraction)  # a provider may bill up to twice what was held
            prompt = billed // 2
            charged = ledger.settle(k, prompt, billed - prompt)
            assert sum(charged) == min(billed, held)
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


def test_a_provider_that_bills_more_than_held_is_clamped_and_learned():
    ledger = Ledger(1000)
    reserve = ledger.prompt_reserve(100, 0.0)
    ledger.reserve("a", reserve + 50)
    assert ledger.settle("a", 130, 50) == (130, reserve + 50 - 130)
    assert ledger.unbilled == 130 + 50 - (reserve + 50)
    ledger.learn_prompt(100, 130)
    assert ledger.prompt_reserve(100, 0.0) >= 130  # the next prompt is held at the provider's count


# ---- the gate: who goes in, who waits ------------------------------------------------------
async def test_gate_lets_the_first_waiter_in_when_tokens_are_freed():
    ledger = Ledger(100)
    gate = Gate(ledger, max_in_flight=4)
    assert await gate.enter("a", 10, 80, timeout=5, stops=()) == 80
    waiting = asyncio.ensure_future(gate.enter("b", 10, 80, timeout=5, stops=()))
    await asyncio.sleep(0)
    assert gate.waiting == 1 and not waiting.done()
    gate.settle("a", 10, 20)  # 70 left: b would get 60 alone, and gets it now
    assert await waiting == 60
    assert ledger.reservations == {"b": 70} and gate.in_flight == 1


async def test_gate_refuses_only_what_the_settled_budget_cannot_hold():
    gate = Gate(Ledger(100), max_in_flight=4)
    await gate.enter("a", 10, 85, timeout=5, stops=())
    with pytest.raises(NotAdmitted) as e:
        await gate.enter("b", 100, 5, timeout=5, stops=())  # 100 tokens of prompt cannot fit
    assert e.value.why == "budget"


async def test_gate_gives_up_a_place_on_stop_timeout_or_cancel():
    ledger = Ledger(100)
    gate = Gate(ledger, max_in_flight=1)
    await gate.enter("a", 10, 10, timeout=5, stops=())
    with pytest.raises(NotAdmitted) as e:
        await gate.enter("b", 10, 10, timeout=0, stops=())
    assert e.value.why == "slots_wait"
    stop = asyncio.Event()
    stopped = asyncio.ensure_future(gate.enter("c", 10, 10, timeout=5, stops=(stop,)))
    cancelled = asyncio.ensure_future(gate.enter("d", 10, 10, timeout=5, stops=()))
    await asyncio.sleep(0)
    assert gate.waiting == 2
    stop.set()
    cancelled.cancel()
    with pytest.raises(NotAdmitted):
        await stopped
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert gate.waiting == 0 and set(ledger.reservations) == {"a"}
    gate.release("a")
    assert gate.in_flight == 0 and ledger.reserved == 0


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
