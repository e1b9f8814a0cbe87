"""The provider call over real HTTP: retries like the openai SDK's (statuses, Retry-After),
refuses without retrying what a retry cannot fix, Azure's deployment URLs and key header,
and server-sent events split across reads. The provider here is a small real HTTP server
that fails on cue and then answers in OpenAI's streaming wire format."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from ib_extension.api.errors import IBError
from ib_extension.service.llm import Provider, ServerSentEvents


def sse(*chunks: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + \
        b"data: [DONE]\n\n"


REPLY = sse(
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"},
                  "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
)


class Flaky(tornado.web.RequestHandler):
    """Answers the first len(failures) requests with those statuses, then REPLY in two
    writes that split an event in the middle."""

    def initialize(self, state: dict) -> None:
        self.state = state

    async def post(self, *_) -> None:
        self.state["seen"].append({"path": self.request.path,
                                   "query": self.request.query_arguments,
                                   "headers": dict(self.request.headers),
                                   "body": json.loads(self.request.body)})
        if self.state.get("cookie"):  # a load balancer's affinity, say
            self.set_cookie("affinity", f"call-{len(self.state['seen'])}")
        if self.state["failures"]:
            self.set_status(self.state["failures"].pop(0))
            self.set_header("Retry-After", "0.01")
            self.finish({"error": {"message": "Bearer sk-secretsecretsecret is busy"}})
            return
        if "hold" in self.state:  # a provider gone silent: before its answer's head, or
            if self.state.get("hold_after") is None:  # after the first event
                await self.state["hold"].wait()
                return
        self.set_header("Content-Type", "text/event-stream")
        if "hold" in self.state or "pace" in self.state:  # an event at a time
            reply = self.state.get("reply", REPLY)
            events = [e + b"\n\n" for e in reply.split(b"\n\n") if e]
            for i, event in enumerate(events):
                self.write(event)
                await self.flush()
                if i == self.state.get("hold_after"):
                    await self.state["hold"].wait()
                    return
                await asyncio.sleep(self.state.get("pace", 0))  # the provider's own pace
            return
        if self.state.get("whole"):  # every event in one write
            self.finish(self.state.get("reply", REPLY))
            return
        half = len(REPLY) // 2
        self.write(REPLY[:half])
        await self.flush()
        self.finish(REPLY[half:])


@contextlib.asynccontextmanager
async def flaky_provider(*failures: int):
    """(url, state) of a provider serving in this test's loop."""
    state: dict = {"failures": list(failures), "seen": []}
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"(.*)", Flaky, {"state": state})]))  # proxied: a URL
    server.add_sockets(sockets)
    try:
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", state
    finally:
        server.stop()


async def collect(**provider_settings) -> list:
    """The chunks of one streamed completion from a Provider made with these settings."""
    provider = Provider(**{"timeout": 5, **provider_settings})
    try:
        chunks = []
        async for read in provider.stream(model="gpt-4o-mini", max_tokens=50,
                                          options={"user": "s1"},
                                          messages=b'[{"role":"user","content":"hi"}]'):
            chunks += read
        return chunks
    finally:
        await provider.close()


async def test_retries_busy_and_failing_answers_then_streams():
    async with flaky_provider(503, 429) as (url, state):
        chunks = await collect(base_url=url + "/v1", api_key="sk-secretsecretsecret",
                               max_retries=2)
    assert "".join(c.text for c in chunks) == "Hello there"
    assert (chunks[-1].prompt_tokens, chunks[-1].completion_tokens) == (7, 2)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert len(state["seen"]) == 3
    sent = state["seen"][-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-secretsecretsecret"
    assert sent["body"]["stream"] is True and sent["body"]["stream_options"] == {
        "include_usage": True}
    assert sent["body"]["max_completion_tokens"] == 50 and sent["body"]["user"] == "s1"
    assert sent["body"]["messages"] == [{"role": "user", "content": "hi"}]


async def test_a_providers_cookies_are_never_sent_back():
    """One client serves every candidate's calls: a cookie the provider set on one must
    not ride on the next (it would tie candidates' calls together at the provider)."""
    async with flaky_provider(503) as (url, state):
        state["cookie"] = True  # a host name: cookie jars keep none from IP addresses
        chunks = await collect(base_url=url.replace("127.0.0.1", "localhost") + "/v1",
                               api_key="k", max_retries=1)
    assert "".join(c.text for c in chunks) == "Hello there"
    assert len(state["seen"]) == 2  # the retry came after a Set-Cookie
    assert [seen["headers"].get("Cookie") for seen in state["seen"]] == [None, None]


@pytest.mark.parametrize("statuses, calls, sentence", [
    ([503, 503, 503], 2, "returned an error (HTTP 503)"),  # retried once, then said
    ([429, 429], 2, "busy right now"),
    ([400], 1, "returned an error (HTTP 400)"),  # a retry cannot fix the request
    ([401], 1, "returned an error (HTTP 401)"),
])
async def test_failures_end_as_one_sentence_without_provider_text(
        caplog, statuses, calls, sentence):
    async with flaky_provider(*statuses) as (url, state):
        with pytest.raises(IBError) as refused:
            await collect(base_url=url + "/v1", api_key="sk-secretsecretsecret", max_retries=1)
    assert refused.value.code == "provider_error" and sentence in refused.value.message
    assert "sk-" not in refused.value.message
    assert len(state["seen"]) == calls
    assert "sk-secretsecretsecret" not in caplog.text  # logged, masked


async def test_azure_names_the_deployment_and_sends_its_key_header():
    async with flaky_provider() as (url, state):
        chunks = await collect(base_url=url, api_key="azure-key", max_retries=0,
                               azure_api_version="2024-10-21")
    assert "".join(c.text for c in chunks) == "Hello there"
    sent = state["seen"][0]
    assert sent["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert sent["query"] == {"api-version": [b"2024-10-21"]}
    assert sent["headers"]["Api-Key"] == "azure-key"
    assert "Authorization" not in sent["headers"]


async def test_an_unreachable_provider_is_said_so():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(IBError) as refused:
        await collect(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
    assert "could not be reached" in refused.value.message


async def test_the_environments_proxy_carries_the_call_unless_no_proxy_names_the_host(
        monkeypatch):
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with flaky_provider() as (proxy, state):
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy)
        chunks = await collect(base_url="http://provider.invalid/v1", api_key="k",
                               max_retries=0)
        assert "".join(c.text for c in chunks) == "Hello there"
        assert [s["path"] for s in state["seen"]] == [
            "http://provider.invalid/v1/chat/completions"]  # a proxy's request line

        with socket.socket() as s:  # a port nothing listens on, named in NO_PROXY
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with pytest.raises(IBError) as refused:
            await collect(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        assert "could not be reached" in refused.value.message
        assert len(state["seen"]) == 1  # not through the proxy


async def test_the_first_answer_of_a_read_comes_alone_and_the_rest_together():
    """A read that holds the whole reply: its first chunk with text is handed on before
    the rest of the read is parsed, the rest in one batch (one write to the candidate)."""
    async with flaky_provider() as (url, state):
        state["whole"] = True
        provider = Provider(base_url=url + "/v1", api_key="k", timeout=5, max_retries=0)
        try:
            batches = [[c.text for c in read] async for read in provider.stream(
                model="gpt-4o-mini", max_tokens=50, options={},
                messages=b'[{"role":"user","content":"hi"}]')]
        finally:
            await provider.close()
    assert batches == [["Hello"], [" there", ""]]


async def test_a_lone_surrogate_from_the_provider_becomes_a_replacement_character():
    """JSON can escape half of a UTF-16 pair; the candidate's JSON, tiktoken and DuckDB
    cannot take one, so the relay never passes one on."""
    async with flaky_provider() as (url, state):
        state["whole"] = True
        state["reply"] = sse(  # json.dumps writes the lone halves as \ud800 and \udc00
            {"choices": [{"index": 0, "delta": {"content": "a\ud800b", "refusal": "\udc00"},
                          "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1",
                          "function": {"name": "f", "arguments": "{\"x\": \"\udc00\"}"}}]},
                          "finish_reason": "tool_calls"}]})
        chunks = await collect(base_url=url + "/v1", api_key="k", max_retries=0)
    assert b"\\ud800" in state["reply"]  # sent escaped, as a provider would
    assert chunks[0].text == "a\ufffdb" and chunks[0].refusal == "\ufffd"
    assert chunks[1].tool_calls[0]["function"]["arguments"] == '{"x": "\ufffd"}'
    for c in chunks:  # all of it UTF-8 now
        (c.text + c.refusal + json.dumps(c.tool_calls, ensure_ascii=False)).encode()


async def test_bytes_that_are_not_utf8_become_replacement_characters():
    async with flaky_provider() as (url, state):
        state["whole"] = True
        state["reply"] = (b'data: {"choices": [{"index": 0, "delta": {"content": "a\xffb"}, '
                          b'"finish_reason": "stop"}]}\n\ndata: [DONE]\n\n')
        chunks = await collect(base_url=url + "/v1", api_key="k", max_retries=0)
    assert [c.text for c in chunks] == ["a\ufffdb"]


# One stream in the event format's every form: comments, named events, a data field
# without its space, data over several lines; after [DONE], nothing is read.
EVENTS = [b": keep-alive", b'data: {"a": 1}', b"event: delta\ndata: {\"b\": 2}",
          b"data:{\"c\": 3}", b"data: {\"d\":\ndata: 4}", b"data: [DONE]", b"data: {\"e\": 5}"]
EXPECTED = [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}', b'{"d":\n4}']


@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_server_sent_events_come_whole_wherever_the_reads_cut_the_stream(end):
    stream = b"".join(e.replace(b"\n", end) + end + end for e in EVENTS)
    for cut in range(len(stream) + 1):
        for parts in ([stream[:cut], stream[cut:]], [stream[:cut], b"", stream[cut:]]):
            events = ServerSentEvents()
            got = [e for part in parts if not events.done for e in events.feed(part)]
            assert (got, events.done) == (EXPECTED, True), (end, cut)


@pytest.mark.parametrize("hold_after, sentence", [(None, "did not answer in time"),
                                                  (0, "stopped answering")],
                         ids=["before the head", "mid-stream"])
async def test_a_provider_gone_silent_ends_the_call_after_its_timeout(hold_after, sentence):
    async with flaky_provider() as (url, state):
        state.update(hold=asyncio.Event(), hold_after=hold_after)
        try:
            with pytest.raises(IBError) as stopped:
                await collect(base_url=url + "/v1", api_key="k", max_retries=0, timeout=0.5)
        finally:
            state["hold"].set()
    assert stopped.value.code == "provider_error" and sentence in stopped.value.message


async def test_a_slow_steady_stream_is_not_cut_however_long_it_takes():
    """The timeout bounds each wait for the provider's next bytes, not the whole reply:
    ten events 0.3 s apart outlast a 2 s timeout and arrive whole (each wait is far
    inside it, so a busy machine does not turn one into a timeout)."""
    words = [f"w{i} " for i in range(9)]
    async with flaky_provider() as (url, state):
        state["pace"] = 0.3
        state["reply"] = sse(*[{"choices": [{"index": 0, "delta": {"content": w},
                                             "finish_reason": None}]} for w in words],
                             {"choices": [], "usage": {"prompt_tokens": 7,
                                                       "completion_tokens": 9}})
        chunks = await collect(base_url=url + "/v1", api_key="k", max_retries=0, timeout=2.0)
    assert "".join(c.text for c in chunks) == "".join(words)
    assert chunks[-1].completion_tokens == 9
