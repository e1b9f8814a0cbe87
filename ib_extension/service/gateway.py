"""One chat completion through the service: checks, admission, provider call, settlement.

The flow follows ARCHITECTURE.md's budget semantics:
  refuse early (request, state, rate) → estimate the prompt with tiktoken → wait for the
  session's turn and reserve the prompt and a capped reply in one synchronous step →
  stream from the provider → settle with the provider's usage, at most what was reserved
  (or, when cut off, with what was sent) → let the next request in.
Once a reservation is held, every path ends in `_settle`, which never raises.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from ..api.chat import ChatRequest, ToolMessage, UserMessage
from ..api.errors import IBError
from . import chat_log, injection, provider_request, tokens
from .admission import Gate, NotAdmitted
from .budget import Ledger
from .conversation_cache import ConversationCache
from .core import Service
from .sessions import Session, new_id, used_up

log = logging.getLogger("ib_extension.service.gateway")

# How often a streaming reply's text is written to the file (so a crash loses at most this).
FLUSH_SECONDS = 0.5
DELTA_SECONDS = 0.05  # the live feed gets a reply's text at most this often
INTERNAL = "Something went wrong in the service; it has been logged."


@dataclass
class Settings:
    max_message_chars: int
    completion_cap: int
    system_prompt: str
    prompt_margin: float = 0.02  # headroom over the tiktoken estimate for provider quirks
    queue_timeout: float = 60.0  # longest wait for the session's turn


@dataclass
class Reply:
    """What the handler streams or returns: deltas as they come, then the outcome."""

    id: str
    model: str
    created: int
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # merged by index
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = False  # the provider sent usage (else we count ourselves)
    # At least the completion tokens sent so far: their UTF-8 bytes (a token is at least
    # one byte), set to tiktoken's exact count whenever that is taken (_past_cap).
    counted: int = 0
    error: IBError | None = None  # set when the stream was cut off after it began
    cut_reason: str | None = None  # why it ended early: an error code, "client_stopped", "budget"

    @property
    def content(self) -> str:
        return "".join(self.text)

    @property
    def empty(self) -> bool:
        return not (self.text or self.tool_calls or self.refusal)


def system_prompt(settings: Settings, s: Session, policies: dict[str, str]) -> str:
    return settings.system_prompt.format(
        policy=policies[s.assist_policy],
        title=s.challenge.get("title") or "",
        statement=s.challenge.get("statement") or "",
    )


def budget_refusal(ledger: Ledger, prompt: int, smallest: int) -> IBError:
    """The true sentence for a request the settled budget cannot hold. `smallest` is what
    the shortest possible message would need: below it, and once something was spent, the
    budget is used up; otherwise this message is too big for what is left."""
    left = ledger.settled_left
    if ledger.used and left < smallest:
        return used_up(ledger)
    running = " once your replies still running are charged" if ledger.reserved else ""
    return IBError("budget_exhausted",
                   f"This message needs about {prompt} tokens with the conversation so far "
                   f"(the interview's instructions included), and at most {left} of your "
                   f"{ledger.budget}-token budget are left{running}. Start a shorter "
                   "conversation, or ask the interviewer for more tokens.")


def shortest_request(settings: Settings, s: Session, system: dict[str, Any],
                     conversation: ConversationCache) -> int:
    """Tokens the shortest possible request reserves: the service's instructions (the
    `system` message), an empty question, one token of reply. The session publishes its
    budget as used up below it."""
    estimate = conversation.count([system, {"role": "user", "content": ""}], keep=False)
    return s.ledger.prompt_reserve(estimate, settings.prompt_margin) + 1


async def chat(service: Service, s: Session, req: ChatRequest, settings: Settings,
               disconnected: asyncio.Event) -> AsyncIterator[tuple[str, Any]]:
    """Run one request. Yields ("start", Reply), ("deltas", [OpenAI delta dict, ...])...
    (one list per read from the provider), ("end", Reply).

    Raises IBError before "start" for refusals; after "start", problems end the stream
    with Reply.error set instead, because the HTTP status has been sent.
    """
    refusal = _request_refusal(s, req, settings)
    if refusal is not None:  # the client's mistake: not activity, the clock stays put
        raise service.refuse(s, refusal)
    now = service.now()
    service.candidate_seen(s)
    system = {"role": "system",
              "content": system_prompt(settings, s, service.config.assist_policies)}
    conversation = service.conversation(s)
    s.shortest_request = shortest_request(settings, s, system, conversation)
    refusal = s.chat_refusal(now) or _rate_refusal(service, s, now)
    if refusal is not None:
        raise service.refuse(s, refusal)

    messages = [system]
    messages += provider_request.messages(req)
    options = provider_request.options(req, s.id)
    estimate = tokens.count_prompt_tokens(messages, s.model, tools=options.get("tools"),
                                          response_format=options.get("response_format"),
                                          conversation=conversation)
    prompt_reserve = s.ledger.prompt_reserve(estimate, settings.prompt_margin)
    wanted = min(x for x in (req.max_completion_tokens, req.max_tokens,
                             settings.completion_cap) if x)
    reply = Reply(id=new_id("m"), model=s.model, created=int(now))
    gate = service.gate(s)
    cut = asyncio.Event()
    service.streams[s.id].add(cut)
    try:
        try:
            cap = await gate.enter(reply.id, prompt_reserve, wanted,
                                   timeout=settings.queue_timeout, stops=(cut, disconnected))
        except NotAdmitted as e:
            raise _not_admitted(service, s, gate, e.why, prompt_reserve, settings,
                                cut) from None
        if cut.is_set() or disconnected.is_set():  # stopped in the moment it got in
            gate.release(reply.id)
            raise _not_admitted(service, s, gate, "stopped", prompt_reserve, settings, cut)

        # The reservation is held from here: every path ends in _settle.
        started = time.monotonic()
        assistant: dict[str, Any] | None = None
        answering = False
        try:
            user_msg = await _log_request(service, s, req, estimate, service.now(),
                                          settings.max_message_chars)
            assistant = _message(s, "assistant", "", service.now(), status="streaming",
                                 prompt_tokens=estimate)
            assistant["id"] = reply.id
            answering = True
            yield "start", reply
            async with service.provider_slots:
                # The reply's row (its reservation) is on disk before the provider is
                # called; live readers hear of the turn once the request is on its way.
                service.save_message(assistant, publish=False)
                service.soon_after_tasks(_announce, service, s, user_msg, assistant)
                stream = service.provider.stream(model=s.model,
                                                 messages=conversation.json(messages),
                                                 max_tokens=cap, options=options)
                last_flush = time.monotonic()
                live = _LiveText(service, s.id, reply.id)
                try:
                    async with aclosing(_until(stream, cut, disconnected)) as reads:
                        async for chunks in reads:
                            deltas, over = _absorb_all(reply, chunks, cap, s.model)
                            live.add("".join(d.get("content") or "" for d in deltas))
                            if deltas:
                                yield "deltas", deltas
                            if over:
                                reply.cut_reason, reply.finish_reason = "budget", "length"
                                break
                            if s.status == "active" and s.time_left(service.now()) <= 0:
                                service.tick()  # time ran out mid-stream: expiring cuts us
                            if time.monotonic() - last_flush > FLUSH_SECONDS:
                                assistant["content"] = reply.content
                                service.save_message(assistant, publish=False)
                                last_flush = time.monotonic()
                finally:  # what is held back goes out before the reply's final message
                    live.publish()
            if cut.is_set():
                code, sentence = getattr(cut, "reason", ("session_ended", "The reply was cut off."))
                reply.error = IBError(code, sentence)
            elif disconnected.is_set():
                reply.cut_reason = "client_stopped"
        except IBError as e:
            if not answering:
                raise
            reply.error = e
            service.emit(s, "provider.error", "system",
                         {"message": e.message, "message_id": reply.id})
        except Exception as e:
            log.exception("chat %s failed", reply.id)
            if not answering:
                raise IBError("internal_error", INTERNAL) from e
            reply.error = IBError("internal_error", INTERNAL)
        finally:
            _settle(service, s, gate, reply, assistant, estimate, started)
        yield "end", reply
    finally:
        service.streams[s.id].discard(cut)


class _LiveText:
    """A reply's text for live readers: the first piece at once, then what came in each
    DELTA_SECONDS as one item (a provider's reads come every few milliseconds; a person
    reads no faster, and each item is work for the service and every reader). Text held
    back goes out when its DELTA_SECONDS are up, even if the provider pauses."""

    def __init__(self, service: Service, session_id: str, message_id: str):
        self.service, self.session_id, self.message_id = service, session_id, message_id
        self.pending: list[str] = []
        self.loop = asyncio.get_running_loop()
        self.last = -math.inf
        self.timer: asyncio.TimerHandle | None = None

    def add(self, text: str) -> None:
        if not text:
            return
        self.pending.append(text)
        if self.loop.time() - self.last >= DELTA_SECONDS:
            self.publish()
        elif self.timer is None:
            self.timer = self.loop.call_at(self.last + DELTA_SECONDS, self.publish)

    def publish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.pending:
            self.service.feed.publish(self.session_id, "delta", {
                "message_id": self.message_id, "text": "".join(self.pending)})
            self.pending.clear()
            self.last = self.loop.time()


async def _until(stream: AsyncIterator, *stops: asyncio.Event) -> AsyncIterator:
    """Iterate `stream` until it ends or any of `stops` is set, whichever comes first.

    Reads are awaited directly (a task per read cost more than the rest of the relay);
    a stop that comes while a read waits cancels this task, only there, and that one
    cancellation is taken back (Task.uncancel) before returning."""
    task = asyncio.current_task()
    assert task is not None
    reading = stopped = False

    def stop(_: asyncio.Future) -> None:
        nonlocal stopped
        if reading and not stopped:
            stopped = True
            task.cancel()

    watchers = [asyncio.ensure_future(ev.wait()) for ev in stops]
    for w in watchers:
        w.add_done_callback(stop)
    it = stream.__aiter__()
    try:
        while not any(ev.is_set() for ev in stops):
            reading = True
            try:
                item = await it.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not stopped:  # not ours: the service is shutting down
                    raise
                task.uncancel()
                return
            finally:
                reading = False
            yield item
    finally:
        for w in watchers:
            w.remove_done_callback(stop)
            w.cancel()
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # closing a broken stream must not hide why it broke
                log.debug("closing provider stream failed", exc_info=True)


def _absorb_all(reply: Reply, chunks: list[Any], cap: int,
                model: str) -> tuple[list[dict[str, Any]], bool]:
    """Add one read's chunks to the reply: the deltas to pass on, and whether the reply
    passed its cap (then nothing after the chunk that passed it is taken)."""
    deltas = []
    for chunk in chunks:
        delta = _absorb(reply, chunk)
        if delta:
            deltas.append(delta)
        if _past_cap(reply, cap, model):
            return deltas, True
    return deltas, False


def _absorb(reply: Reply, chunk: Any) -> dict[str, Any] | None:
    """Add a provider chunk to the reply; return the delta to pass on, if any."""
    delta: dict[str, Any] = {}
    if chunk.text:
        reply.text.append(chunk.text)
        reply.counted += len(chunk.text.encode())
        delta["content"] = chunk.text
    if chunk.refusal:
        reply.refusal.append(chunk.refusal)
        reply.counted += len(chunk.refusal.encode())
        delta["refusal"] = chunk.refusal
    if chunk.tool_calls:
        for tc in chunk.tool_calls:
            _merge_tool_call(reply.tool_calls, tc)
            args = (tc.get("function") or {}).get("arguments") or ""
            reply.counted += len(args.encode())
        delta["tool_calls"] = chunk.tool_calls
    if chunk.finish_reason:
        reply.finish_reason = chunk.finish_reason
    if chunk.prompt_tokens is not None:
        reply.prompt_tokens = chunk.prompt_tokens
        reply.completion_tokens = chunk.completion_tokens or 0
        reply.usage_reported = True
    return delta or None


def _merge_tool_call(calls: list[dict[str, Any]], delta: dict[str, Any]) -> None:
    index = delta.get("index", 0)
    while len(calls) <= index:
        calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    call["id"] = delta.get("id") or call["id"]
    call["type"] = delta.get("type") or call["type"]
    fn = delta.get("function") or {}
    call["function"]["name"] += fn.get("name") or ""
    call["function"]["arguments"] += fn.get("arguments") or ""


def _past_cap(reply: Reply, cap: int, model: str) -> bool:
    """Whether the reply has passed its cap: a provider that ignores the cap is stopped
    before its running cost passes the reservation. The bytes bound the tokens from
    above, so tiktoken counts the reply only once the bound has passed the cap (then
    the bound restarts from that count)."""
    if reply.counted <= cap:
        return False
    reply.counted = _completion_count(reply, model)
    return reply.counted > cap


def _completion_count(reply: Reply, model: str) -> int:
    args = "".join(tc["function"]["arguments"] for tc in reply.tool_calls)
    return tokens.count_tokens(reply.content + "".join(reply.refusal) + args, model)


def _request_refusal(s: Session, req: ChatRequest, settings: Settings) -> IBError | None:
    if req.model and req.model != s.model:
        return IBError("invalid_request",
                       f"This interview uses the model '{s.model}'; ask for that one (or omit model).",
                       param="model")
    policy = provider_request.refusal(req)
    if policy is not None:
        return policy
    if not isinstance(req.messages[-1], UserMessage | ToolMessage):
        return IBError("invalid_request", "The last message must be the candidate's (role "
                       "'user') or the results of tool calls (role 'tool').", param="messages")
    turn = chat_log.candidate_turn(req.messages)
    if not turn.strip():
        return IBError("invalid_request", "The message is empty.", param="messages")
    if len(turn) > settings.max_message_chars:
        return IBError("message_too_long",
                       f"The message is {len(turn)} characters long; the limit is "
                       f"{settings.max_message_chars}. Shorten it or ask about a smaller part.")
    return None


def _rate_refusal(service: Service, s: Session, now: float) -> IBError | None:
    wait = service.rate.hit(s.id, now)
    if wait is None:
        return None
    seconds = max(1, math.ceil(wait))  # rounded up: a retry after this many seconds succeeds
    return IBError("rate_limited", f"Too many messages in a short time; try again in {seconds} s.",
                   retry_after=seconds)


def _not_admitted(service: Service, s: Session, gate: Gate, why: str, prompt: int,
                  settings: Settings, cut: asyncio.Event) -> IBError:
    if why == "budget":
        return service.refuse(s, budget_refusal(s.ledger, prompt, s.shortest_request))
    if why == "budget_wait":
        return service.refuse(s, IBError(
            "budget_reserved",
            f"Your replies still running hold {s.ledger.reserved} of the "
            f"{s.ledger.settled_left} tokens left in your budget, and this message (about "
            f"{prompt} tokens before its reply) waited {settings.queue_timeout:g} s for them "
            "to finish. Try again when they have.", retry_after=1))
    if why == "slots_wait":
        return service.refuse(s, IBError(
            "rate_limited",
            f"You already have {gate.in_flight} replies running, the most one session may "
            f"have at once; this message waited {settings.queue_timeout:g} s for one of them "
            "to finish. Try again when one has.", retry_after=1))
    if cut.is_set():  # paused, locked or ended while it waited
        return service.refuse(s, s.chat_refusal(service.now()) or IBError(
            "session_ended", "This interview session has ended, so the AI assistant is closed."))
    # The client went away while waiting: nobody reads this, and nothing was refused.
    return IBError("conflict", "The request was withdrawn before its turn came.")


async def _log_request(service: Service, s: Session, req: ChatRequest, estimate: int,
                       now: float, max_chars: int) -> dict[str, Any]:
    """Log the candidate's turn and flag what needs the interviewer's eye, durably,
    before the provider is called; the turn's message (`_announce` publishes it). A
    flagged message is stored up to `max_chars` (the limit of a candidate's message),
    with its full length."""
    replies = await service.replies(s)  # before this turn counts as a message
    turn = chat_log.candidate_turn(req.messages)
    user_msg = _message(s, "user", turn, now, prompt_tokens=estimate)
    s.message_count += 1
    found = injection.detect(turn)
    if found:
        s.flags["injection"] += 1
        service.emit(s, "injection.suspected", "system",
                     {"pattern": found[0], "excerpt": found[1], "message_id": user_msg["id"]},
                     audience="interviewer")
    seen = service.flagged_seen[s.id]
    for item in chat_log.flagged(req.messages, replies):
        mark = chat_log.fingerprint(item)
        if mark in seen:
            continue
        seen.add(mark)
        s.flags["flagged_messages"] = s.flags.get("flagged_messages", 0) + 1
        service.emit(s, "chat.flagged_message", "candidate",
                     {**item, "content": item["content"][:max_chars],
                      "chars": len(item["content"]), "message_id": user_msg["id"]},
                     audience="interviewer")
    service.save_message(user_msg, publish=False)  # journaled: durable before the call
    service.save(s, publish=False)  # the count and last activity
    return user_msg


def _announce(service: Service, s: Session, user_msg: dict[str, Any],
              assistant: dict[str, Any]) -> None:
    """Tell live readers of the turn: the question, the session's new state, the reply
    that is starting (before any of its deltas: the loop runs this first)."""
    service.publish_message(user_msg)
    service.publish_session(s)
    service.publish_message(assistant)


def _message(s: Session, role: str, content: str, now: float, **fields: Any) -> dict[str, Any]:
    msg = {"id": new_id("m"), "session_id": s.id, "role": role, "content": content,
           "model": s.model, "prompt_tokens": None, "completion_tokens": None,
           "latency_ms": None, "status": "complete", "created_at": now, "finished_at": now}
    msg.update(fields)
    return msg


def _settle(service: Service, s: Session, gate: Gate, reply: Reply,
            assistant: dict[str, Any] | None, estimate: int, started: float) -> None:
    """Charge what the provider billed, at most what was reserved; when it could not say
    (cut off), what was sent. Then log the outcome. Never raises."""
    failed = reply.error is not None and reply.error.code in ("provider_error", "internal_error")
    if assistant is None or (failed and reply.empty and not reply.usage_reported):
        gate.release(reply.id)  # nothing generated: the provider bills nothing
        billed = charged = (0, 0)
    else:
        if reply.usage_reported:
            s.ledger.learn_prompt(estimate, reply.prompt_tokens)
            billed = (reply.prompt_tokens, reply.completion_tokens)
        else:  # no usage from the provider: count it ourselves
            billed = (math.ceil(estimate * s.ledger.prompt_ratio),
                      _completion_count(reply, s.model))
        charged = gate.settle(reply.id, *billed)
    reply.prompt_tokens, reply.completion_tokens = charged
    try:
        _log_reply(service, s, reply, assistant, billed, charged, started)
    except Exception:  # the ledger is settled; a logging failure must not undo that
        log.exception("logging the outcome of chat %s failed", reply.id)


def _log_reply(service: Service, s: Session, reply: Reply, assistant: dict[str, Any] | None,
               billed: tuple[int, int], charged: tuple[int, int], started: float) -> None:
    if assistant is None:
        return
    if reply.error is not None:
        reply.cut_reason = reply.error.code
    failed = reply.cut_reason in ("provider_error", "internal_error")
    if failed and reply.empty:
        assistant.update(status="error", content="", finished_at=service.now(),
                         completion_tokens=0, prompt_tokens=charged[0])
        service.save_message(assistant)
        service.save(s)
        return
    text = chat_log.reply_text(reply.content or "".join(reply.refusal), reply.tool_calls)
    status = "complete" if reply.cut_reason is None else "error" if failed else "cut"
    latency_ms = int((time.monotonic() - started) * 1000)
    assistant.update(content=text, status=status, prompt_tokens=charged[0],
                     completion_tokens=charged[1], latency_ms=latency_ms,
                     finished_at=service.now())
    s.message_count += 1
    s.last_activity_at = service.now()
    service.save_message(assistant)
    service.remember_reply(s, text)
    over = sum(billed) - sum(charged)
    if over:
        s.flags["unbilled"] = s.flags.get("unbilled", 0) + over
        service.emit(s, "usage.clamped", "system",
                     {"message_id": reply.id, "billed_prompt": billed[0],
                      "billed_completion": billed[1], "charged": sum(charged), "over": over},
                     audience="interviewer")
    kind = "chat.completed" if reply.cut_reason is None else "chat.cut"
    payload = {"message_id": reply.id, "prompt_tokens": charged[0],
               "completion_tokens": charged[1], "latency_ms": latency_ms}
    if reply.cut_reason is not None:
        payload["reason"] = reply.cut_reason
    service.emit(s, kind, "system", payload)
    service.check_warnings(s)
    service.save(s, publish=False)  # journaled before the reply ends; readers hear it next
    service.soon(service.publish_session, s)
