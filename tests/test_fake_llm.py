"""The offline demo model, started as a real process and driven by the official SDK."""

import asyncio
import json
import math
import signal
import socket
import subprocess
import sys
import time

import httpx
import jsonschema
import openai
import pytest

from ib_extension.cli import fake_llm
from ib_extension.service import tokens

MODEL = "gpt-4o-mini"
API_KEY = "sk-demo-SECRET-7f3a9c"  # distinctive, so a leak into the logs is easy to spot


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo model exited early with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            continue  # not bound yet
    raise AssertionError(f"demo model did not listen on port {port} within {timeout}s")


class DemoProcess:
    def __init__(self, tmp_path, *extra_args):
        self.port = free_port()
        self.stderr_path = tmp_path / f"fake-llm-{self.port}.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ib_extension.cli.fake_llm", "--port", str(self.port), *extra_args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        try:
            wait_until_listening(self.port, self.proc)
        except AssertionError:
            self.proc.kill()
            self.stop()
            raise
        self.banner = self.proc.stdout.readline().strip()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.stderr.close()
        return self.proc.returncode, self.stderr_path.read_text()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    server = DemoProcess(tmp_path_factory.mktemp("fake-llm"))
    yield server
    server.stop()


@pytest.fixture
def client(demo):
    with openai.OpenAI(base_url=demo.base_url, api_key=API_KEY, max_retries=0, timeout=20) as c:
        yield c


def ask(text):
    return [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}]


def stream_text(client, messages, **kwargs):
    """The streamed reply's text, finish reason and usage (if asked for)."""
    parts, finish, usage = [], None, None
    with client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, **kwargs
    ) as stream:
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
    return "".join(parts), finish, usage


def test_cli_announces_its_url(demo):
    assert demo.banner == f"Offline demo model listening on {demo.base_url}"


def test_models_are_listed(client):
    assert [m.id for m in client.models.list()] == list(fake_llm.LISTED_MODELS)


def test_reply_is_labelled_mentions_the_question_and_shows_python(client):
    question = "How do I sort a list of tuples by the second item?"
    reply = client.chat.completions.create(model=MODEL, messages=ask(question))
    text = reply.choices[0].message.content
    assert text.startswith("*Offline demo model")
    assert "not a reply from a real AI" in text.splitlines()[0]
    assert question in text
    assert "```python\n" in text
    assert reply.model == MODEL
    assert reply.choices[0].finish_reason == "stop"


def test_stream_and_non_stream_give_the_same_text(client):
    messages = ask("Why does my function raise a KeyError?")
    plain = client.chat.completions.create(model=MODEL, messages=messages)
    streamed, finish, _ = stream_text(client, messages)
    assert streamed == plain.choices[0].message.content
    assert finish == "stop"


def test_replies_are_deterministic(client):
    messages = ask("What is a good first step?")
    first = client.chat.completions.create(model=MODEL, messages=messages)
    second = client.chat.completions.create(model=MODEL, messages=messages)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.id != second.id


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4", "llama3.1:8b"])
def test_usage_matches_token_counts(client, model):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "name": "candidate", "content": "Explain big O of dict lookups."},
    ]
    reply = client.chat.completions.create(model=model, messages=messages)
    usage = reply.usage
    assert usage.prompt_tokens == tokens.count_message_tokens(messages, model)
    assert usage.completion_tokens == tokens.count_tokens(reply.choices[0].message.content, model)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    with client.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert all(chunk.usage is None for chunk in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert final.usage.prompt_tokens == tokens.count_message_tokens(messages, model)
    assert final.usage.completion_tokens == tokens.count_tokens(text, model)


def test_skew_control_bills_like_another_tokenizer_within_the_cap(client):
    messages = ask("[[skew:1.5]] [[tokens:100]]")
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=60)
    text = reply.choices[0].message.content
    assert reply.usage.prompt_tokens == -(-3 * tokens.count_message_tokens(messages, MODEL) // 2)
    assert reply.usage.completion_tokens == -(-3 * tokens.count_tokens(text, MODEL) // 2)
    assert reply.usage.completion_tokens <= 60 + 1 and reply.choices[0].finish_reason == "length"


def test_stream_without_usage_option_sends_no_usage(client):
    _, _, usage = stream_text(client, ask("hello"))
    assert usage is None


@pytest.mark.parametrize("n", [1, 37, 500])
def test_tokens_control_gives_about_n_tokens(client, n):
    reply = client.chat.completions.create(model=MODEL, messages=ask(f"[[tokens:{n}]]"))
    assert abs(reply.usage.completion_tokens - n) <= 2
    content = reply.choices[0].message.content
    label = f"Offline demo model: filler reply of about {n} tokens."
    assert content.startswith(label) or label.startswith(content)  # short replies cut the label


@pytest.mark.parametrize("cap_field", ["max_tokens", "max_completion_tokens"])
def test_completion_cap_stops_with_length(client, cap_field):
    cap = 20
    messages = ask("[[tokens:200]]")
    reply = client.chat.completions.create(model=MODEL, messages=messages, **{cap_field: cap})
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens <= cap
    assert tokens.count_tokens(reply.choices[0].message.content, MODEL) <= cap

    text, finish, usage = stream_text(
        client, messages, stream_options={"include_usage": True}, **{cap_field: cap}
    )
    assert finish == "length"
    assert usage.completion_tokens == tokens.count_tokens(text, MODEL) <= cap
    assert text == reply.choices[0].message.content


def test_cap_above_the_reply_length_changes_nothing(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=ask("[[tokens:10]]"), max_tokens=11
    )
    assert reply.choices[0].finish_reason == "stop"


def test_reply_control_returns_the_text_verbatim(client):
    payload = '<img src=x onerror="alert(1)"> **bold** <script>alert("x")</script>\n`code` [a](b)'
    messages = ask(f"Please render this: [[reply:{payload}]]")
    reply = client.chat.completions.create(model=MODEL, messages=messages)
    assert reply.choices[0].message.content == payload
    assert stream_text(client, messages)[0] == payload


def test_multibyte_reply_streams_as_whole_characters(client):
    payload = "naïve 🚀 世界 ✓"
    text, _, _ = stream_text(client, ask(f"[[reply:{payload}]]"))
    assert text == payload


def test_rate_limit_fault(client):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=ask("[[fault:429]]"))
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"
    assert "[[fault:429]]" in caught.value.message


def test_server_error_fault(client):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=ask("[[fault:500]]"))
    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


@pytest.mark.parametrize("stream", [False, True])
def test_timeout_fault(client, stream):
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(
            model=MODEL, messages=ask("[[fault:timeout]]"), stream=stream
        )


def test_cut_fault_drops_the_stream_midway(client):
    words = " ".join(f"word{i}" for i in range(40))
    received = []
    with pytest.raises((openai.APIError, httpx.TransportError)):
        with client.chat.completions.create(
            model=MODEL, messages=ask(f"[[fault:cut]][[reply:{words}]]"), stream=True
        ) as stream:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    text = "".join(received)
    assert text and words.startswith(text) and text != words


def test_cut_fault_without_streaming_is_a_connection_error(client):
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=ask("[[fault:cut]]"))


@pytest.mark.parametrize("authorization", [openai.Omit(), "", "Bearer", "Basic abc"])
def test_requests_without_a_bearer_key_are_refused(client, authorization):
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=ask("hi"), extra_headers={"Authorization": authorization}
        )
    assert caught.value.code == "invalid_api_key"


def test_refusal_has_the_openai_error_shape(demo):
    response = httpx.get(f"{demo.base_url}/models")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"messages": []}, "'messages' must be a non-empty array"),
        ({"messages": ask("[[fault:nope]]")}, "unknown [[fault:nope]]"),
        ({"messages": ask("[[tokens:many]]")}, "[[tokens:many]] needs a whole number"),
        ({"messages": ask("[[slow:0]]")}, "[[slow:TPS]] needs a finite TPS > 0"),
        ({"messages": ask("hi"), "max_tokens": 0}, "'max_tokens' must be a positive integer"),
        ({"messages": ask("hi"), "n": 2}, "only supports n=1"),
    ],
)
def test_bad_requests_get_a_readable_400(client, kwargs, message):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, **kwargs)
    assert message in caught.value.message


def test_unknown_url_is_an_openai_shaped_404(demo):
    response = httpx.get(f"{demo.base_url}/embeddings")
    assert response.status_code == 404
    assert "POST /v1/chat/completions" in response.json()["error"]["message"]


def test_slow_control_paces_the_stream(client):
    n, tps = 10, 40.0
    started = time.monotonic()
    text, _, _ = stream_text(client, ask(f"[[tokens:{n}]][[slow:{tps}]]"))
    elapsed = time.monotonic() - started
    pieces = len(fake_llm.split_into_tokens(text, MODEL, None)[0])
    assert elapsed >= (pieces - 1) / tps


def test_cli_serves_until_sigterm_and_never_logs_the_key(tmp_path):
    server = DemoProcess(tmp_path, "--latency", "0", "--tokens-per-second", "0")
    try:
        with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as c:
            c.chat.completions.create(model=MODEL, messages=ask("hello"))
            with pytest.raises(openai.InternalServerError):
                c.chat.completions.create(model=MODEL, messages=ask("[[fault:500]]"))
    finally:
        returncode, log = server.stop()
    assert returncode == 0
    assert "POST /v1/chat/completions" in log  # the access log is there ...
    assert API_KEY not in log and API_KEY[-6:] not in log  # ... without the key


def test_cli_rejects_negative_pacing(capsys):
    with pytest.raises(SystemExit):
        fake_llm.main(["--latency", "-1"])
    assert "must be >= 0" in capsys.readouterr().err


def test_make_app_rejects_negative_pacing():
    with pytest.raises(ValueError, match="tokens_per_second must be >= 0"):
        fake_llm.make_app(tokens_per_second=-5)


def test_start_inside_an_event_loop_honours_latency():
    latency = 0.3

    async def scenario():
        server, port = await fake_llm.start(latency=latency)
        try:
            async with openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0
            ) as c:
                started = time.monotonic()
                reply = await c.chat.completions.create(model=MODEL, messages=ask("hi"))
                return reply, time.monotonic() - started
        finally:
            server.stop()
            await server.close_all_connections()

    reply, elapsed = asyncio.run(scenario())
    assert reply.choices[0].message.content.startswith("*Offline demo model")
    assert elapsed >= latency


def test_split_keeps_characters_whole_and_respects_the_cap():
    text = "🚀🚀🚀 naïve 世界"
    pieces, finish = fake_llm.split_into_tokens(text, MODEL, None)
    assert "".join(pieces) == text and finish == "stop"
    total = tokens.count_tokens(text, MODEL)
    for cap in range(1, total):
        pieces, finish = fake_llm.split_into_tokens(text, MODEL, cap)
        joined = "".join(pieces)
        assert finish == "length"
        assert text.startswith(joined)
        assert tokens.count_tokens(joined, MODEL) <= cap


def test_controls_combine_and_reply_may_hold_anything_but_the_closing_brackets():
    controls = fake_llm.parse_controls(
        "x [[tokens:12]] [[slow:2.5]] [[reply:a [b] {c}\n]] [[fault:cut]] [[other:1]]"
    )
    assert controls == fake_llm.Controls(reply="a [b] {c}\n", tokens=12, slow=2.5, fault="cut")
    assert fake_llm.parse_controls("plain question, x[[1]]") == fake_llm.Controls()


def test_controls_are_stripped_from_the_quoted_question():
    reply = fake_llm.compose_reply("Sort this [[slow:5]] please")
    assert "Sort this please" in reply
    assert "[[" not in reply


def test_port_in_use_is_a_clear_error(demo):
    result = subprocess.run(
        [sys.executable, "-m", "ib_extension.cli.fake_llm", "--port", str(demo.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{demo.port}" in result.stderr


# ---- tools, JSON and usage skew ------------------------------------------------------------
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {
        "zone": {"type": "string"}}}}}


def test_tools_are_called_with_arguments_that_fit_their_schema(client):
    r = client.chat.completions.create(model=MODEL, tools=[WEATHER, TIME], messages=[
        {"role": "user", "content": "Weather in Paris? [[tool:get_weather,get_time]]"}])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather", "get_time"]
    args = json.loads(choice.message.tool_calls[0].function.arguments)
    assert args["unit"] == "celsius" and isinstance(args["city"], str)
    billed = sum(tokens.count_tokens(c.function.arguments, MODEL) for c in choice.message.tool_calls)
    assert r.usage.completion_tokens == billed
    assert r.usage.prompt_tokens == tokens.count_prompt_tokens(
        [{"role": "user", "content": "Weather in Paris? [[tool:get_weather,get_time]]"}], MODEL,
        tools=[WEATHER, TIME])


def test_tool_calls_stream_as_deltas_and_respect_parallel_false(client):
    stream = client.chat.completions.create(
        model=MODEL, tools=[WEATHER, TIME], parallel_tool_calls=False, stream=True,
        messages=[{"role": "user", "content": "both [[tool:get_time,get_weather]]"}])
    names, args, finish = [], "", None
    for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or []:
            if tc.function.name:
                names.append(tc.function.name)
            args += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["get_time"] and finish == "tool_calls"
    assert set(json.loads(args)) == {"zone"}


def test_after_tool_results_it_answers_in_text(client):
    r = client.chat.completions.create(model=MODEL, tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees and sunny"}])
    assert "18 degrees and sunny" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"


def test_json_schema_reply_parses_and_fits(client):
    schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
        "size": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["name", "tags", "size"], "additionalProperties": False,
        "$defs": {"Tag": {"type": "object", "properties": {"label": {"enum": ["a", "b"]}},
                          "required": ["label"]}}}
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "Thing", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    obj = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                         response_format={"type": "json_object"})
    assert isinstance(json.loads(obj.choices[0].message.content), dict)


def test_skew_reports_more_tokens_and_holds_the_cap_in_its_units(client):
    ask = [{"role": "user", "content": "Go [[tokens:300]] [[skew:1.5]]"}]
    r = client.chat.completions.create(model=MODEL, messages=ask, max_tokens=90)
    sent = tokens.count_tokens(r.choices[0].message.content, MODEL)
    assert r.usage.completion_tokens == math.ceil(1.5 * sent) <= 90
    assert r.usage.prompt_tokens == math.ceil(1.5 * tokens.count_message_tokens(ask, MODEL))


def test_overrun_fault_ignores_the_cap(client):
    r = client.chat.completions.create(model=MODEL, max_tokens=10, messages=[
        {"role": "user", "content": "Go [[tokens:60]] [[fault:overrun]]"}])
    assert r.usage.completion_tokens == 60 and r.choices[0].finish_reason == "stop"


def test_echo_key_fault_puts_the_key_in_the_error(client):
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model=MODEL, messages=[
            {"role": "user", "content": "hi [[fault:echo-key]]"}])
    assert API_KEY in e.value.message


def test_cli_usage_skew_applies_to_every_request(tmp_path):
    demo = DemoProcess(tmp_path, "--usage-skew", "2")
    try:
        client = openai.OpenAI(base_url=demo.base_url, api_key=API_KEY, max_retries=0)
        ask = [{"role": "user", "content": "hello"}]
        r = client.chat.completions.create(model=MODEL, messages=ask)
        assert r.usage.prompt_tokens == 2 * tokens.count_message_tokens(ask, MODEL)
    finally:
        demo.stop()
