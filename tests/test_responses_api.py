"""POST /ib/v1/responses through the official SDK: text and function tools, streaming and
not, structured output, the same budget, log and errors as chat."""

import asyncio
import json

import httpx
import openai
import pydantic
import pytest
from helpers import candidate_client

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False},
           "strict": True}


async def billed(service, sid):
    rows = await service.store.run(service.store.messages, sid)
    return sum((m["prompt_tokens"] or 0) + (m["completion_tokens"] or 0)
               for m in rows if m["role"] == "assistant")


async def test_text_reply_is_charged_and_logged(make_session, base_url, service):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    r = await client.responses.create(model="gpt-4o-mini", input="How do I sort a list?",
                                      instructions="Answer briefly.")
    assert r.status == "completed" and "sorted()" in r.output_text
    s = service.sessions[created["id"]]
    assert r.usage.total_tokens == s.ledger.used == await billed(service, s.id)
    rows = await service.store.run(service.store.messages, s.id)
    assert [m["role"] for m in rows] == ["user", "assistant"]
    assert rows[0]["content"] == "How do I sort a list?" and rows[1]["content"] == r.output_text
    flagged = await service.store.run(service.store.events, s.id, ["chat.flagged_message"])
    assert [e["payload"]["content"] for e in flagged] == ["Answer briefly."]


async def test_streamed_events_build_the_same_response(make_session, base_url, service):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    plain = await client.responses.create(model="gpt-4o-mini", input="How do I sort a list?")
    async with client.responses.stream(model="gpt-4o-mini", input="How do I sort a list?") as s:
        kinds = [event.type async for event in s]
        final = await s.get_final_response()
    assert final.output_text == plain.output_text
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed" and "response.output_text.delta" in kinds
    session = service.sessions[created["id"]]
    assert session.ledger.used == plain.usage.total_tokens + final.usage.total_tokens


async def test_function_tools_round_trip(make_session, base_url, service):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    first = await client.responses.create(model="gpt-4o-mini", tools=[WEATHER],
                                          input="What is the weather in Paris?")
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert set(json.loads(calls[0].arguments)) == {"city"}
    second = await client.responses.create(model="gpt-4o-mini", tools=[WEATHER], input=[
        {"role": "user", "content": "What is the weather in Paris?"},
        *[c.model_dump() for c in calls],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "21 and sunny"}])
    assert "21 and sunny" in second.output_text
    s = service.sessions[created["id"]]
    assert s.ledger.used == first.usage.total_tokens + second.usage.total_tokens
    rows = await service.store.run(service.store.messages, s.id)
    assert rows[1]["content"].startswith("Tool call: get_weather(")
    assert rows[2]["content"].startswith(f"Tool result ({calls[0].call_id}):")


async def test_streamed_function_call_arguments(make_session, base_url):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    async with client.responses.stream(model="gpt-4o-mini", tools=[WEATHER],
                                       input="Weather in Oslo?") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.function_call_arguments.delta"]
        final = await stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and "".join(deltas) == call.arguments
    assert json.loads(call.arguments)["city"]


class Plan(pydantic.BaseModel):
    steps: list[str]
    difficulty: int


async def test_structured_output_parses(make_session, base_url):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    r = await client.responses.parse(model="gpt-4o-mini", input="Plan fizzbuzz", text_format=Plan)
    assert isinstance(r.output_parsed, Plan) and r.output_parsed.steps


@pytest.mark.parametrize("body,words,param", [
    ({"input": "hi", "previous_response_id": "resp_1"}, "conversation state",
     "previous_response_id"),
    ({"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
     "Images are not allowed in this interview", "input.0.content.0"),
    ({"input": "hi", "tools": [{"type": "web_search"}]}, "only function tools", "tools.0"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "conversation state", "input.0"),
])
async def test_what_needs_state_or_is_not_allowed_is_refused_by_name(
        make_session, base_url, service, body, words, param):
    created = await make_session()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        r = await c.post("/ib/v1/responses", json=body,
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert words in err["message"] and err["param"] == param
    s = service.sessions[created["id"]]
    assert s.ledger.used == 0 and s.status == "created"


async def test_a_cut_off_response_is_an_error_streamed_or_not(make_session, base_url, service,
                                                              aio_interviewer):
    created = await make_session()
    sid = created["id"]
    client = candidate_client(base_url, created["candidate_token"])
    cursor = service.feed.cursor

    def deltas():
        items, _ = service.feed.since(cursor, lambda it: it["session_id"] == sid
                                      and it["kind"] == "delta")
        return len(items)

    streamed = await client.responses.create(model="gpt-4o-mini", stream=True,
                                             input="Slowly [[tokens:300]] [[slow:40]]")
    plain = asyncio.ensure_future(client.responses.create(
        model="gpt-4o-mini", input="Slowly too [[tokens:300]] [[slow:40]]"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while deltas() < 6:
        assert loop.time() < deadline, "no deltas"
        await asyncio.sleep(0.01)
    await aio_interviewer.post(f"/ib/api/sessions/{sid}/lock")
    with pytest.raises(openai.APIError) as e:
        async for _ in streamed:
            pass
    assert "locked" in e.value.message
    with pytest.raises(openai.PermissionDeniedError) as e:
        await plain
    assert e.value.code == "session_locked"
    s = service.sessions[sid]
    assert s.ledger.reserved == 0 and s.ledger.used == await billed(service, sid) > 0
