"""The LLM provider behind the service: any OpenAI-compatible endpoint (or Azure OpenAI).

The call is plain HTTP with aiohttp's client (already here with JupyterHub), and the
reply's server-sent events are read raw: the openai SDK's request machinery and its
object per chunk cost more CPU than everything else the service does for a request, and
httpx's pure-Python layers three times aiohttp's C parser per streamed reply. What the
SDK brought is kept: its timeouts, its retries (connection failures, timeouts before an
answer, HTTP 408/409/429/5xx, with its backoff and the provider's Retry-After up to a
minute), the environment's proxy variables, Azure's deployment URLs. Errors
leave this module as IBError with a sentence a candidate can read; provider internals
(URLs, keys, bodies) stay in the service log, with credentials masked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from ..api import fast_json
from ..api.errors import IBError

log = logging.getLogger("ib_extension.service.llm")


# Credentials a provider might echo in an error: bearer tokens and OpenAI-style keys.
_SECRET_SHAPES = re.compile(r"(?i)(bearer\s+)\S+|\bsk-[A-Za-z0-9_-]{8,}")
STOPPED = "The AI provider stopped answering. Please try again."
TIMED_OUT = "The AI provider did not answer in time. Please try again."
UNREACHABLE = "The AI provider could not be reached. Please try again in a moment."
BUSY = "The AI provider is busy right now. Please try again in a moment."
RETRIED_STATUSES = {408, 409, 429}  # and every 5xx, as the SDK retries them
# asyncio reads a socket 256 KiB at a time into a new bytes object; past glibc's mmap
# threshold that is an mmap and a munmap per read (15 us, against 2 us at 64 KiB), and a
# streamed reply comes in hundreds of small reads.
READ_SIZE = 64 * 1024


@dataclass
class Chunk:
    text: str = ""
    refusal: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # deltas, with their index
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Provider:
    def __init__(self, *, base_url: str, api_key: str, timeout: float, max_retries: int,
                 completion_cap_param: str = "max_completion_tokens",
                 azure_api_version: str = "", connections: int = 100):
        # Up to one kept-alive connection per call in flight. `timeout` bounds getting a
        # connection, the wait for the answer's head and each wait for the provider's next
        # bytes, as the SDK's did; a long reply that keeps coming is not cut. (The waits
        # for bytes are _ReadWatch's, not aiohttp's sock_read.)
        self._connections = connections
        self.timeout = timeout
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout)
        self._http: aiohttp.ClientSession | None = None  # made in the loop that uses it
        self._base = base_url.rstrip("/")
        # The environment's proxy for the provider, read once: aiohttp's trust_env reads
        # it (and ~/.netrc) again on a thread for every request.
        self._proxy = env_proxy(self._base)
        self._azure = bool(azure_api_version)
        if self._azure:
            self._params = {"api-version": azure_api_version}
            self._headers = {"api-key": api_key}
        else:
            self._params = {}
            self._headers = {"Authorization": f"Bearer {api_key}"}
        self._headers.update({"Content-Type": "application/json",
                              "Accept": "text/event-stream"})
        self.max_retries = max_retries
        self.cap_param = completion_cap_param
        self.api_key = api_key

    async def stream(self, *, model: str, messages: bytes, max_tokens: int,
                     options: dict) -> AsyncIterator[list[Chunk]]:
        """Stream a completion, one list of chunks per read from the network (so the
        relay writes and flushes once per read, not per chunk), except that the first
        chunk with an answer comes alone; the last chunk carries the provider's usage, if
        it sent any. `messages` is their JSON array (ConversationCache.json)."""
        head = fast_json.dumps({"model": model, "stream": True,
                                "stream_options": {"include_usage": True},
                                self.cap_param: max_tokens, **options})
        body = head[:-1] + b',"messages":' + messages + b"}"
        response = await self._open(model, body)
        whole = False  # read to its end: the connection goes back to the pool
        answered = False  # a chunk with something to relay has been yielded
        watch = _ReadWatch(response, self.timeout)
        try:
            events = ServerSentEvents()
            reads = response.content.iter_any().__aiter__()
            while True:
                try:
                    watch.since = watch.loop.time()
                    data = await reads.__anext__()
                    watch.since = None
                except StopAsyncIteration:
                    whole = True
                    return
                except Exception as e:  # the connection broke or timed out mid-stream
                    log.warning("provider stream broke: %s", redact(repr(e), self.api_key))
                    raise IBError("provider_error", STOPPED) from e
                pending = events.feed(data)
                while pending:
                    if answered:
                        batch, pending = pending, []
                    else:  # one at a time until the first answer: it goes out before the
                        batch, pending = pending[:1], pending[1:]  # rest is even parsed
                    chunks = [self._chunk(event) for event in batch]
                    answered = answered or any(c.text or c.refusal or c.tool_calls
                                               for c in chunks)
                    yield chunks
                if events.done:  # read the body to its end, so the connection is reused
                    try:
                        async for _ in reads:
                            pass
                        whole = True
                    except Exception:  # the reply is whole; only the connection is lost
                        log.debug("provider body after [DONE] broke", exc_info=True)
                    return
        finally:
            watch.close()
            if whole:
                response.release()
            else:  # cut off: closing the connection tells the provider to stop
                response.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                # getaddrinfo, as everything else here resolves (not aiodns's own DNS)
                connector=aiohttp.TCPConnector(limit=self._connections,
                                               resolver=aiohttp.ThreadedResolver()),
                timeout=self._timeout,
                # One client carries every candidate's calls: a cookie the provider set
                # on one (a load balancer's affinity, a session) must not ride on others.
                cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    async def _open(self, model: str, body: bytes) -> aiohttp.ClientResponse:
        """Send the request and return the streaming response once its status is good."""
        http = self._session()
        url = self._base + "/chat/completions"
        if self._azure:  # the model names the deployment, as the SDK's Azure client has it
            url = f"{self._base}/openai/deployments/{quote(model, safe='')}/chat/completions"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                async with asyncio.timeout(self.timeout):  # until the answer's head
                    response = await http.post(url, params=self._params,
                                               headers=self._headers, data=body,
                                               proxy=self._proxy)
            except TimeoutError as e:  # aiohttp's timeouts are TimeoutErrors too
                if last:
                    raise self._failed(TIMED_OUT, e) from e
                wait = _backoff(attempt)
            except aiohttp.ClientError as e:
                if last:
                    raise self._failed(UNREACHABLE, e) from e
                wait = _backoff(attempt)
            else:
                status = response.status
                if status < 400:
                    _read_in_small_pieces(response)
                    return response
                try:
                    async with asyncio.timeout(self.timeout):
                        detail = (await _head(response, 2000)).decode("utf-8", "replace")
                except (aiohttp.ClientError, TimeoutError) as e:  # the status says enough
                    detail = repr(e)
                response.close()
                log.warning("provider answered HTTP %d: %s", status,
                            redact(detail, self.api_key))
                if last or not (status in RETRIED_STATUSES or status >= 500):
                    raise IBError("provider_error", status_sentence(status))
                wait = _retry_after(response.headers) or _backoff(attempt)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _failed(self, sentence: str, e: Exception) -> IBError:
        log.warning("provider call failed: %s", redact(repr(e), self.api_key))
        return IBError("provider_error", sentence)

    def _chunk(self, event: bytes) -> Chunk:
        try:
            data = fast_json.loads(event)
        except ValueError:
            try:  # bytes that are not UTF-8 read as U+FFFD, as the event format decodes them
                data = fast_json.loads(event.decode("utf-8", "replace"))
            except ValueError as e:
                log.warning("provider sent an event that is not JSON: %.200r", event)
                raise IBError("provider_error", STOPPED) from e
        if not isinstance(data, dict) or "error" in data:
            log.warning("provider error in its stream: %s",
                        redact(str(data)[:500], self.api_key))
            raise IBError("provider_error", STOPPED)
        out = Chunk()
        choices = data.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            out.text = _text(delta.get("content"))
            out.refusal = _text(delta.get("refusal"))
            calls = delta.get("tool_calls")
            if calls:
                out.tool_calls = [_without_nulls(tc) for tc in calls]
            out.finish_reason = choice.get("finish_reason")
        usage = data.get("usage")
        if usage:
            out.prompt_tokens = usage.get("prompt_tokens") or 0
            out.completion_tokens = usage.get("completion_tokens") or 0
        return out

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


class _ReadWatch:
    """Ends a read of the answer that has waited `seconds` for bytes (as aiohttp's
    sock_read would) with one timer per call, re-armed when it fires; sock_read made and
    dropped a timer for every read, 5 % of the event loop's time at 200 streams. Only
    time spent waiting counts: a candidate who reads slowly holds the relay back, and
    that is not the provider's silence."""

    def __init__(self, response: aiohttp.ClientResponse, seconds: float):
        self.response, self.seconds = response, seconds
        self.loop = asyncio.get_running_loop()
        self.since: float | None = None  # when the read now waiting began
        self._timer: asyncio.TimerHandle | None = self.loop.call_later(seconds, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        if self.since is not None and now - self.since >= self.seconds:
            self._timer = None
            self.response.content.set_exception(aiohttp.ServerTimeoutError(
                f"no bytes from the provider for {self.seconds:g} s"))
            return
        start = now if self.since is None else self.since
        self._timer = self.loop.call_at(start + self.seconds, self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ServerSentEvents:
    """Splits a byte stream into the `data` of its server-sent events, across reads (lines
    end in LF or CRLF, as every provider's do)."""

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[bytes] = []
        self.done = False  # the OpenAI stream's closing `data: [DONE]` arrived

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        events = []
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:  # a blank line ends an event
                if self._data:
                    event = b"\n".join(self._data)
                    self._data = []
                    if event == b"[DONE]":
                        self.done = True
                        return events
                    events.append(event)
            elif line.startswith(b"data:"):
                self._data.append(line[5:].removeprefix(b" "))
        return events


def _text(value: Any) -> str:
    """A delta's text. A lone UTF-16 surrogate, which JSON lets a provider escape
    (`"\\ud800"`), becomes U+FFFD: nothing after this (the candidate's JSON, tiktoken,
    DuckDB) takes one."""
    if not isinstance(value, str):
        return ""
    if value.isascii():  # most deltas: no copy to check
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _without_nulls(value: Any) -> Any:
    """A tool call's delta without its null fields, its text as `_text` makes it."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return _text(value) if isinstance(value, str) else value


def env_proxy(url: str) -> str | None:
    """The proxy that HTTP(S)_PROXY / ALL_PROXY set for `url`, unless NO_PROXY names it."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all")


def redact(text: str, *secrets: str) -> str:
    """`text` with the given secrets and anything shaped like a credential masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _SECRET_SHAPES.sub(lambda m: f"{m.group(1) or ''}[redacted]", text)


def status_sentence(status: int) -> str:
    """The candidate's sentence for a provider's error status (no provider text in it)."""
    if status == 429:
        return BUSY
    if status == 408:
        return TIMED_OUT
    return f"The AI provider returned an error (HTTP {status}). Please try again."


def _backoff(attempt: int) -> float:
    """The SDK's: half a second, doubling up to 8 s, less up to a quarter of jitter."""
    return min(0.5 * 2 ** attempt, 8.0) * (1 - 0.25 * random.random())


def _read_in_small_pieces(response: aiohttp.ClientResponse) -> None:
    """READ_SIZE reads on the response's connection (asyncio's transports read
    `max_size` bytes at a time)."""
    transport = response.connection.transport if response.connection else None
    if transport is not None and getattr(transport, "max_size", 0) > READ_SIZE:
        transport.max_size = READ_SIZE


async def _head(response: aiohttp.ClientResponse, size: int) -> bytes:
    """The first `size` bytes of a body (all of it if shorter), across reads."""
    data = b""
    while len(data) < size and (part := await response.content.read(size - len(data))):
        data += part
    return data


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The provider's Retry-After in seconds, if it gave one of at most a minute."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if 0 < seconds <= 60 else None
