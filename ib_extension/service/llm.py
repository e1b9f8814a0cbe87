"""The LLM provider behind the service: any OpenAI-compatible endpoint via the openai SDK.

The SDK brings timeouts and retries with backoff. Errors leave this module as IBError
with a sentence a candidate can read; provider internals (URLs, keys, bodies) stay in
the service log.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai

from ..api.errors import IBError

log = logging.getLogger("ib_extension.service.llm")


# Credentials a provider might echo in an error: bearer tokens and OpenAI-style keys.
_SECRET_SHAPES = re.compile(r"(?i)(bearer\s+)\S+|\bsk-[A-Za-z0-9_-]{8,}")
STOPPED = "The AI provider stopped answering. Please try again."


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
        # One kept-alive connection per call in flight: past the pool's keep-alive size
        # (100 by default) every call would open and close a connection of its own.
        # `Limits` is the class of the HTTP library the SDK is built on.
        defaults = openai.DEFAULT_CONNECTION_LIMITS
        http = openai.DefaultAsyncHttpxClient(limits=type(defaults)(
            max_connections=connections, max_keepalive_connections=connections,
            keepalive_expiry=defaults.keepalive_expiry))
        if azure_api_version:
            self.client: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
                azure_endpoint=base_url, api_key=api_key, api_version=azure_api_version,
                timeout=timeout, max_retries=max_retries, http_client=http,
            )
        else:
            self.client = openai.AsyncOpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries,
                http_client=http,
            )
        self.cap_param = completion_cap_param
        self._api_key = api_key

    async def stream(self, *, model: str, messages: list[dict], max_tokens: int,
                     options: dict) -> AsyncIterator[list[Chunk]]:
        """Stream a completion, one list of chunks per read from the network (so the
        relay writes and flushes once per read, not per chunk); the last chunk carries the
        provider's usage, if it sent any.

        The SDK makes the request (retries, auth, Azure's URLs, error statuses); the
        server-sent events are read raw: building SDK objects for every chunk cost more
        than everything else the service does per chunk."""
        try:
            async with self.client.chat.completions.with_streaming_response.create(
                model=model, messages=messages, stream=True,
                stream_options={"include_usage": True},
                **{self.cap_param: max_tokens}, **options,
            ) as response:
                events = ServerSentEvents()
                reads = response.http_response.aiter_bytes().__aiter__()
                while True:
                    try:
                        data = await reads.__anext__()
                    except StopAsyncIteration:
                        return
                    except Exception as e:  # the connection broke or timed out mid-stream
                        log.warning("provider stream broke: %s",
                                    redact(repr(e), self._api_key))
                        raise IBError("provider_error", STOPPED) from e
                    chunks = [self._chunk(event) for event in events.feed(data)]
                    if chunks:
                        yield chunks
                    if events.done:  # read the body to its end, so the connection is reused
                        async for _ in reads:
                            pass
                        return
        except openai.APIError as e:
            raise self._error(e) from e

    def _chunk(self, event: str) -> Chunk:
        try:
            data = json.loads(event)
        except ValueError as e:
            log.warning("provider sent an event that is not JSON: %.200r", event)
            raise IBError("provider_error", STOPPED) from e
        if not isinstance(data, dict) or "error" in data:
            log.warning("provider error in its stream: %s",
                        redact(str(data)[:500], self._api_key))
            raise IBError("provider_error", STOPPED)
        out = Chunk()
        choices = data.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            out.text = _text(delta.get("content"))
            out.refusal = _text(delta.get("refusal"))
            out.tool_calls = [_without_nulls(tc) for tc in delta.get("tool_calls") or ()]
            out.finish_reason = choice.get("finish_reason")
        usage = data.get("usage")
        if usage:
            out.prompt_tokens = usage.get("prompt_tokens") or 0
            out.completion_tokens = usage.get("completion_tokens") or 0
        return out

    def _error(self, e: openai.APIError) -> IBError:
        log.warning("provider error: %s: %s", type(e).__name__, redact(str(e), self._api_key))
        return provider_error(e)

    async def close(self) -> None:
        await self.client.close()


class ServerSentEvents:
    """Splits a byte stream into the `data` of its server-sent events, across reads."""

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[str] = []
        self.done = False  # the OpenAI stream's closing `data: [DONE]` arrived

    def feed(self, data: bytes) -> list[str]:
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        events = []
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:  # a blank line ends an event
                if self._data:
                    event = "\n".join(self._data)
                    self._data = []
                    if event == "[DONE]":
                        self.done = True
                        return events
                    events.append(event)
            elif line.startswith(b"data:"):
                self._data.append(line[5:].removeprefix(b" ").decode("utf-8", "replace"))
        return events


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def redact(text: str, *secrets: str) -> str:
    """`text` with the given secrets and anything shaped like a credential masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _SECRET_SHAPES.sub(lambda m: f"{m.group(1) or ''}[redacted]", text)


def provider_error(e: openai.APIError) -> IBError:
    """The candidate's sentence for a provider failure (no provider text in it)."""
    if isinstance(e, openai.APITimeoutError):
        msg = "The AI provider did not answer in time. Please try again."
    elif isinstance(e, openai.APIConnectionError):
        msg = "The AI provider could not be reached. Please try again in a moment."
    elif isinstance(e, openai.RateLimitError):
        msg = "The AI provider is busy right now. Please try again in a moment."
    elif isinstance(e, openai.APIStatusError):
        msg = f"The AI provider returned an error (HTTP {e.status_code}). Please try again."
    else:
        msg = STOPPED
    return IBError("provider_error", msg)
