"""From a candidate's chat request to the provider's: what is forwarded, dropped or refused.

| request field | what the service does |
|---|---|
| messages | forwarded after the service's system prompt; `cache_control` markers (on messages and text parts, as LiteLLM sends them) dropped |
| image, audio and file parts | refused by policy: "not allowed in this interview" (the interview is about code, and an image's token cost depends on its size, which a URL does not give) |
| tools, tool_choice, parallel_tool_calls, response_format | forwarded; tool definitions, calls and schemas are counted in the prompt estimate |
| temperature, top_p, presence/frequency_penalty, stop, seed, logit_bias, reasoning_effort, verbosity | forwarded |
| max_tokens, max_completion_tokens | the smaller one, capped by `completion_cap` and the budget |
| n | 1 only: one reply per request, one logged answer |
| logprobs, top_logprobs | refused when asked for |
| user, safety_identifier | dropped: the provider gets the session id as `user`, never a name |
| store, metadata, service_tier, prompt_cache_key | dropped: the service keeps its own log, and provider-side storage or pricing tiers are the operator's choice |
| modalities other than text, audio, prediction, web_search_options | refused |
| functions, function_call (deprecated) | refused: send tools |
| stream, stream_options | the service always streams from the provider with usage; they shape only the answer |
"""

from __future__ import annotations

from typing import Any

from ..api.chat import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    FilePart,
    ImagePart,
    UserMessage,
)
from ..api.errors import IBError

FORWARDED = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "seed",
             "logit_bias", "reasoning_effort", "verbosity", "tools", "tool_choice",
             "parallel_tool_calls", "response_format")

_MEDIA = {ImagePart: "Images", AudioPart: "Audio", FilePart: "Files"}


def refusal(req: ChatRequest) -> IBError | None:
    """The first field this interview does not allow, as a sentence naming it."""
    for i, m in enumerate(req.messages):
        if isinstance(m, UserMessage) and isinstance(m.content, list):
            for j, part in enumerate(m.content):
                what = _MEDIA.get(type(part))
                if what:
                    where = f"messages.{i}.content.{j}"
                    return IBError("invalid_request",
                                   f"{what} are not allowed in this interview ({where} is a "
                                   f"'{part.type}' part); send text only.", param=where)
        if isinstance(m, AssistantMessage):
            if m.function_call is not None:
                return _refuse(f"messages.{i}.function_call",
                               "is the deprecated form of tool calls; send tool_calls")
            if m.audio is not None:
                return _refuse(f"messages.{i}.audio", "is not available: audio is not "
                               "allowed in this interview")
    if req.n not in (None, 1):
        return _refuse("n", f"is {req.n}, but the assistant gives one reply per request; "
                       "send n=1 or leave it out")
    if req.logprobs or req.top_logprobs:
        field = "logprobs" if req.logprobs else "top_logprobs"
        return _refuse(field, "is not available in this interview; leave it out")
    if req.modalities not in (None, ["text"]):
        return _refuse("modalities", "may only be ['text']: audio is not allowed in this "
                       "interview")
    for field in ("audio", "prediction", "web_search_options"):
        if getattr(req, field) is not None:
            return _refuse(field, "is not available in this interview; leave it out")
    if req.functions is not None or req.function_call is not None:
        field = "functions" if req.functions is not None else "function_call"
        return _refuse(field, "is the deprecated form of tools; send tools and tool_choice")
    return None


def _refuse(field: str, problem: str) -> IBError:
    return IBError("invalid_request", f"Field '{field}' {problem}.", param=field)


def messages(req: ChatRequest) -> list[dict[str, Any]]:
    """The candidate's messages as the provider gets them."""
    out = []
    for m in req.messages:
        d = m.model_dump(exclude_none=True, by_alias=True, exclude={"cache_control"})
        if isinstance(d.get("content"), list):
            for part in d["content"]:
                part.pop("cache_control", None)
        out.append(d)
    return out


def options(req: ChatRequest, session_id: str) -> dict[str, Any]:
    """The forwarded fields, plus the session id as `user`."""
    opts = {k: req.model_dump(include={k}, exclude_none=True, by_alias=True)[k]
            for k in FORWARDED if getattr(req, k) is not None}
    opts["user"] = session_id
    return opts
