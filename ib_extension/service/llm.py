"""The LLM provider behind the service: any OpenAI-compatible endpoint via the openai SDK.

The SDK brings timeouts and retries with backoff. Errors leave this module as IBError
with a sentence a candidate can read; provider internals (URLs, keys, bodies) stay in
the service log.
"""

from __future__ import annotations

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
                 azure_api_version: str = ""):
        if azure_api_version:
            self.client: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
                azure_endpoint=base_url, api_key=api_key, api_version=azure_api_version,
                timeout=timeout, max_retries=max_retries,
            )
        else:
            self.client = openai.AsyncOpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
            )
        self.cap_param = completion_cap_param
        self._api_key = api_key

    async def stream(self, *, model: str, messages: list[dict], max_tokens: int,
                     options: dict) -> AsyncIterator[Chunk]:
        """Stream a completion; the last chunk carries the provider's usage, if it sent any."""
        try:
            stream = await self.client.chat.completions.create(
                model=model, messages=messages, stream=True,
                stream_options={"include_usage": True},
                **{self.cap_param: max_tokens}, **options,
            )
        except openai.APIError as e:
            raise self._error(e) from e
        try:
            async for chunk in stream:
                out = Chunk()
                if chunk.choices:
                    choice = chunk.choices[0]
                    delta = choice.delta
                    if delta is not None:
                        out.text = delta.content or ""
                        out.refusal = getattr(delta, "refusal", None) or ""
                        out.tool_calls = [tc.model_dump(exclude_none=True)
                                          for tc in delta.tool_calls or ()]
                    out.finish_reason = choice.finish_reason
                if chunk.usage is not None:
                    out.prompt_tokens = chunk.usage.prompt_tokens
                    out.completion_tokens = chunk.usage.completion_tokens
                yield out
        except openai.APIError as e:
            raise self._error(e) from e
        finally:
            await stream.close()

    def _error(self, e: openai.APIError) -> IBError:
        log.warning("provider error: %s: %s", type(e).__name__, redact(str(e), self._api_key))
        return provider_error(e)

    async def close(self) -> None:
        await self.client.close()


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
        msg = "The AI provider stopped answering. Please try again."
    return IBError("provider_error", msg)
