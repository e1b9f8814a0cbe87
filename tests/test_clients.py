"""Mainstream OpenAI clients against /ib/v1 of a real `ib serve` with the demo model: the
official SDK, LangChain's ChatOpenAI, and the call jupyter-ai's Jupyternaut makes (LiteLLM's
`acompletion` with an OpenAI-compatible `api_base`). Each is charged exactly what the
provider billed: the session's `tokens_used` equals the usage the client was given."""

import json
import os
from types import SimpleNamespace

import openai
import pydantic
import pytest

MODEL = "gpt-4o-mini"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18 degrees in {city}"


@pytest.fixture(scope="module")
def lc():
    """LangChain, imported only by the tests that use it (it takes seconds to import)."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langchain_openai import ChatOpenAI

    return SimpleNamespace(ChatOpenAI=ChatOpenAI, HumanMessage=HumanMessage,
                           ToolMessage=ToolMessage, weather=tool(get_weather),
                           openai_tool=convert_to_openai_tool)


class Plan(pydantic.BaseModel):
    """A plan to solve the challenge."""

    steps: list[str]
    difficulty: int


@pytest.fixture
def session(live):
    created = live.create_session(token_budget=50_000)
    created["base_url"] = live.url + "/ib/v1"
    yield created
    assert live.client.session(created["id"])["tokens_reserved"] == 0


def used(live, session) -> int:
    return live.client.session(session["id"])["tokens_used"]


# ---- the official SDK ----------------------------------------------------------------------
def test_sdk_tools_round_trip_and_streamed_tool_calls(live, session, lc):
    client = openai.OpenAI(base_url=session["base_url"], api_key=session["candidate_token"])
    tools = [lc.openai_tool(lc.weather)]
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=ask, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    second = client.chat.completions.create(model=MODEL, tools=tools, messages=[
        *ask, first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id,
         "content": get_weather(**json.loads(call.function.arguments))}])
    assert "18 degrees in" in second.choices[0].message.content
    with client.chat.completions.stream(model=MODEL, messages=ask, tools=tools,
                                        stream_options={"include_usage": True}) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion()
    assert streamed.choices[0].message.tool_calls[0].function.name == "get_weather"
    total = sum(r.usage.total_tokens for r in (first, second, streamed))
    assert used(live, session) == total


def test_sdk_json_schema_parse(live, session):
    client = openai.OpenAI(base_url=session["base_url"], api_key=session["candidate_token"])
    r = client.chat.completions.parse(model=MODEL, response_format=Plan,
                                      messages=[{"role": "user", "content": "Plan fizzbuzz"}])
    assert isinstance(r.choices[0].message.parsed, Plan)
    assert used(live, session) == r.usage.total_tokens


# ---- LangChain -----------------------------------------------------------------------------
def chat_model(lc, session, **kw):
    return lc.ChatOpenAI(base_url=session["base_url"], api_key=session["candidate_token"],
                      model=MODEL, max_retries=0, stream_usage=True, **kw)


def tokens_of(message) -> int:
    return message.usage_metadata["total_tokens"]


def test_langchain_invoke_stream_and_batch(live, session, lc):
    llm = chat_model(lc, session)
    one = llm.invoke("How do I sort a list?")
    assert "sorted()" in one.content
    chunks = list(llm.stream("How do I sort a list?"))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert streamed.content == one.content
    batch = llm.batch([f"Question {i}: explain recursion" for i in range(4)])
    assert len(batch) == 4 and all(m.content for m in batch)
    assert used(live, session) == sum(tokens_of(m) for m in [one, streamed, *batch])


def test_langchain_bind_tools_round_trip(live, session, lc):
    llm = chat_model(lc, session).bind_tools([lc.weather])
    question = lc.HumanMessage("What is the weather in Paris?")
    asked = llm.invoke([question])
    assert [c["name"] for c in asked.tool_calls] == ["get_weather"]
    results = [lc.ToolMessage(lc.weather.invoke(c["args"]), tool_call_id=c["id"])
               for c in asked.tool_calls]
    answer = llm.invoke([question, asked, *results])
    assert "18 degrees in" in answer.content
    assert used(live, session) == tokens_of(asked) + tokens_of(answer)


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_langchain_with_structured_output(live, session, lc, method):
    llm = chat_model(lc, session).with_structured_output(Plan, method=method, include_raw=True)
    prompt = "Plan fizzbuzz as JSON with steps and difficulty" if method == "json_mode" \
        else "Plan fizzbuzz"
    out = llm.invoke(prompt)
    if method == "json_mode":  # JSON mode promises JSON, not the schema's keys
        assert isinstance(json.loads(out["raw"].content), dict)
    else:
        assert isinstance(out["parsed"], Plan), out
    assert used(live, session) == tokens_of(out["raw"])


def test_langchain_responses_api(live, session, lc):
    llm = chat_model(lc, session, use_responses_api=True)
    text = llm.invoke("How do I sort a list?")
    assert "sorted()" in text.text
    asked = llm.bind_tools([lc.weather]).invoke("What is the weather in Oslo?")
    assert [c["name"] for c in asked.tool_calls] == ["get_weather"]
    chunks = list(llm.stream("How do I sort a list?"))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert streamed.text == text.text
    assert used(live, session) == sum(tokens_of(m) for m in (text, asked, streamed))


# ---- jupyter-ai (Jupyternaut's model call) --------------------------------------------------
# LiteLLM's own types trigger a pydantic notice on first use; it is about LiteLLM, not us.
@pytest.mark.filterwarnings("ignore:.* using the .ReadOnly. qualifier:UserWarning")
async def test_jupyternaut_litellm_call_with_cache_control_and_tools(live, session, lc):
    # The call jupyter_ai_jupyternaut's ChatLiteLLM makes for an OpenAI-compatible server:
    # model "openai/<name>" with api_base, streaming with usage, and cache_control injected
    # into the system message, which the service drops.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    import litellm

    common = dict(model=f"openai/{MODEL}", api_base=session["base_url"],
                  api_key=session["candidate_token"], stream=True,
                  stream_options={"include_usage": True},
                  cache_control_injection_points=[{"location": "message", "role": "system"}])
    system = {"role": "system", "content": "You are Jupyternaut, a helpful assistant."}
    totals, text, calls = [], "", []
    stream = await litellm.acompletion(
        messages=[system, {"role": "user", "content": "How do I sort a list?"}], **common)
    async for chunk in stream:
        text += chunk.choices[0].delta.content or "" if chunk.choices else ""
        if getattr(chunk, "usage", None):
            totals.append(chunk.usage.total_tokens)
    assert "sorted()" in text
    stream = await litellm.acompletion(
        messages=[system, {"role": "user", "content": "Weather in Paris?"}],
        tools=[lc.openai_tool(lc.weather)], **common)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.tool_calls:
            calls += [tc.function.name for tc in chunk.choices[0].delta.tool_calls
                      if tc.function and tc.function.name]
        if getattr(chunk, "usage", None):
            totals.append(chunk.usage.total_tokens)
    assert calls == ["get_weather"]
    assert len(totals) == 2 and used(live, session) == sum(totals)
