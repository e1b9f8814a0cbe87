"""One chat completion through the service: checks, reservation, provider call, settlement.

The flow follows ARCHITECTURE.md's budget semantics:
  refuse early (state, size, rate) → estimate the prompt with tiktoken → reserve the
  prompt and a capped completion in one synchronous step → stream from the provider →
  settle with the provider's usage (or, when cut off, with what was sent) → release.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..api.errors import IBError
from ..api.requests import ChatRequest
from . import injection, tokens
from .budget import BudgetExceeded
from .core import Service
from .sessions import Session, new_id

log = logging.getLogger("ib_extension.service.gateway")

# How often a streaming reply's text is written to the file (so a crash loses at most this).
FLUSH_SECONDS = 0.5


@dataclass
class Settings:
    max_message_chars: int
    completion_cap: int
    system_prompt: str
    prompt_margin: float = 0.02  # headroom over the tiktoken estimate for provider quirks


@dataclass
class Reply:
    """What the handler streams or returns: deltas as they come, then the outcome."""

    id: str
    model: str
    created: int
    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: IBError | None = None  # set when the stream was cut off after it began
    cut_reason: str | None = None  # why it ended early: an error code or "client_stopped"


def system_prompt(settings: Settings, s: Session, policies: dict[str, str]) -> str:
    return settings.system_prompt.format(
        policy=policies[s.assist_policy],
        title=s.challenge.get("title") or "",
        statement=s.challenge.get("statement") or "",
    )


def shortest_request(settings: Settings, s: Session, policies: dict[str, str]) -> int:
    """Tokens the shortest possible request reserves: the service's instructions, an empty
    question, one token of reply. The session publishes its budget as used up below it."""
    system = {"role": "system", "content": system_prompt(settings, s, policies)}
    estimate = tokens.count_message_tokens([system, {"role": "user", "content": ""}], s.model)
    return estimate + int(estimate * settings.prompt_margin) + 4 + 1


async def chat(service: Service, s: Session, req: ChatRequest, settings: Settings,
               disconnected: asyncio.Event) -> AsyncIterator[tuple[str, Any]]:
    """Run one request. Yields ("start", Reply), ("delta", text)..., ("end", Reply).

    Raises IBError before "start" for refusals; after "start", problems end the stream
    with Reply.error set instead, because the HTTP status has been sent.
    """
    now = service.now()
    service.candidate_seen(s)
    s.shortest_request = shortest_request(settings, s, service.config.assist_policies)
    refusal = s.chat_refusal(now)
    if refusal is None:
        refusal = _request_refusal(s, req, settings)
    if refusal is None:
        wait = service.rate.hit(s.id, now)
        if wait is not None:
            refusal = IBError("rate_limited",
                              f"Too many messages in a short time; try again in {max(1, round(wait))} s.",
                              retry_after=wait)
    if refusal is not None:
        raise service.refuse(s, refusal)

    messages = [{"role": "system",
                 "content": system_prompt(settings, s, service.config.assist_policies)}]
    messages += [m.model_dump(exclude_none=True) for m in req.messages]
    prompt_estimate = tokens.count_message_tokens(messages, s.model)
    prompt_reserve = prompt_estimate + int(prompt_estimate * settings.prompt_margin) + 4
    wanted = min(x for x in (req.max_completion_tokens, req.max_tokens, settings.completion_cap) if x)
    cap = min(wanted, s.ledger.left - prompt_reserve)
    reply_id = new_id("m")
    if cap < 1:
        left = s.ledger.left
        raise service.refuse(s, IBError(
            "budget_exhausted",
            f"Your token budget is used up: this message needs about {prompt_reserve} tokens "
            f"with the conversation so far, and {left} are left."
            if left else "Your token budget is used up, so the AI assistant is closed.",
        ))
    try:
        s.ledger.reserve(reply_id, prompt_reserve + cap)
    except BudgetExceeded as e:  # cannot happen after the check above; fail closed anyway
        raise service.refuse(s, IBError("budget_exhausted",
                                        f"Your token budget cannot cover this message ({e}).")) from e

    question = req.messages[-1].text()
    user_msg = _message(s, "user", question, now, prompt_tokens=prompt_estimate)
    s.message_count += 1
    flagged = injection.detect(question)
    if flagged:
        s.flags["injection"] += 1
        service.emit(s, "injection.suspected", "system",
                     {"pattern": flagged[0], "excerpt": flagged[1], "message_id": user_msg["id"]},
                     audience="interviewer")
    await asyncio.wrap_future(service.save_message(user_msg))
    service.save(s)  # the count and last activity, durable before the provider is called

    reply = Reply(id=reply_id, model=s.model, created=int(now))
    cut = asyncio.Event()
    service.streams[s.id].add(cut)
    started = time.monotonic()
    assistant = _message(s, "assistant", "", service.now(), status="streaming",
                         prompt_tokens=prompt_estimate)
    assistant["id"] = reply_id
    try:
        yield "start", reply
        async with service.provider_slots:
            service.save_message(assistant)
            stream = service.provider.stream(
                model=s.model, messages=messages, max_tokens=cap,
                options=req.provider_options())
            last_flush = time.monotonic()
            async for chunk in _until(stream, cut, disconnected):
                if chunk.text:
                    reply.text.append(chunk.text)
                    service.feed.publish(s.id, "delta", {"message_id": reply_id, "text": chunk.text})
                    yield "delta", chunk.text
                if chunk.finish_reason:
                    reply.finish_reason = chunk.finish_reason
                if chunk.prompt_tokens is not None:
                    reply.prompt_tokens = chunk.prompt_tokens
                    reply.completion_tokens = chunk.completion_tokens or 0
                if s.status == "active" and s.time_left(service.now()) <= 0:
                    service.tick()  # time ran out mid-stream: expiring the session cuts us
                if time.monotonic() - last_flush > FLUSH_SECONDS:
                    assistant["content"] = "".join(reply.text)
                    service.save_message(assistant, publish=False)
                    last_flush = time.monotonic()
        if cut.is_set():
            code, sentence = getattr(cut, "reason", ("session_ended", "The reply was cut off."))
            reply.error = IBError(code, sentence)
        elif disconnected.is_set():
            reply.cut_reason = "client_stopped"
    except IBError as e:
        reply.error = e
        if not reply.text:
            # Nothing was generated: the provider bills nothing, release it all.
            reply.prompt_tokens = 0
        service.emit(s, "provider.error", "system", {"message": e.message, "message_id": reply_id})
    finally:
        service.streams[s.id].discard(cut)
        _settle(service, s, reply, assistant, prompt_estimate, started)
    yield "end", reply


async def _until(stream: AsyncIterator, *stops: asyncio.Event) -> AsyncIterator:
    """Iterate `stream` until it ends or any of `stops` is set, whichever comes first."""
    waiters = [asyncio.ensure_future(ev.wait()) for ev in stops]
    it = stream.__aiter__()
    try:
        while True:
            nxt = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait([nxt, *waiters], return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
                return
            try:
                yield nxt.result()
            except StopAsyncIteration:
                return
    finally:
        for w in waiters:
            w.cancel()
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # closing a broken stream must not hide why it broke
                log.debug("closing provider stream failed", exc_info=True)


def _request_refusal(s: Session, req: ChatRequest, settings: Settings) -> IBError | None:
    if req.model and req.model != s.model:
        return IBError("invalid_request",
                       f"This interview uses the model '{s.model}'; ask for that one (or omit model).",
                       param="model")
    if req.messages[-1].role != "user":
        return IBError("invalid_request", "The last message must be the candidate's (role 'user').",
                       param="messages")
    question = req.messages[-1].text()
    if not question.strip():
        return IBError("invalid_request", "The message is empty.", param="messages")
    if len(question) > settings.max_message_chars:
        return IBError("message_too_long",
                       f"The message is {len(question)} characters long; the limit is "
                       f"{settings.max_message_chars}. Shorten it or ask about a smaller part.")
    return None


def _message(s: Session, role: str, content: str, now: float, **fields: Any) -> dict[str, Any]:
    msg = {"id": new_id("m"), "session_id": s.id, "role": role, "content": content,
           "model": s.model, "prompt_tokens": None, "completion_tokens": None,
           "latency_ms": None, "status": "complete", "created_at": now, "finished_at": now}
    msg.update(fields)
    return msg


def _settle(service: Service, s: Session, reply: Reply, assistant: dict[str, Any],
            prompt_estimate: int, started: float) -> None:
    """Charge what the provider billed; when it could not say (cut off), what was sent."""
    text = "".join(reply.text)
    if not reply.text and reply.error is not None and reply.error.code == "provider_error":
        s.ledger.release(reply.id)
        assistant.update(status="error", content="", finished_at=service.now(),
                         completion_tokens=0, prompt_tokens=0)
        service.save_message(assistant)
        service.save(s)
        return
    if not reply.prompt_tokens:  # no usage from the provider: count it ourselves
        reply.prompt_tokens = prompt_estimate
        reply.completion_tokens = tokens.count_tokens(text, s.model)
    s.ledger.settle(reply.id, reply.prompt_tokens, reply.completion_tokens)
    if reply.error is not None:
        reply.cut_reason = reply.error.code
    status = ("complete" if reply.cut_reason is None
              else "error" if reply.cut_reason == "provider_error" else "cut")
    latency_ms = int((time.monotonic() - started) * 1000)
    assistant.update(content=text, status=status, prompt_tokens=reply.prompt_tokens,
                     completion_tokens=reply.completion_tokens, latency_ms=latency_ms,
                     finished_at=service.now())
    s.message_count += 1
    s.last_activity_at = service.now()
    service.save_message(assistant)
    kind = "chat.completed" if reply.cut_reason is None else "chat.cut"
    payload = {"message_id": reply.id, "prompt_tokens": reply.prompt_tokens,
               "completion_tokens": reply.completion_tokens, "latency_ms": latency_ms}
    if reply.cut_reason is not None:
        payload["reason"] = reply.cut_reason
    service.emit(s, kind, "system", payload)
    service.check_warnings(s)
    service.save(s)
