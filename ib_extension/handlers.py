"""HTTP handlers: one class per route. Each declares its operations (audience, summary,
body model) in `ops`; the base class enforces them and `routes.py` lists them, so the
OpenAPI document and the role checks come from the same declarations.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel
from tornado import web
from tornado.iostream import StreamClosedError

from . import __version__, gateway, roles, schemas
from .errors import IBError, status_code_error
from .roles import CANDIDATE, INTERVIEWER, PUBLIC
from .service import Service, SessionFilter, event_view, message_view
from .sessions import STATUSES, TRANSITIONS

log = logging.getLogger("ib_extension.handlers")

VERBS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Op:
    audience: str
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    max_body: int | None = None  # bytes; None = the service's max_body_bytes
    success: int = 200


class IBHandler(APIHandler):
    ops: ClassVar[dict[str, Op]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Our roles module decides who may call what, including candidates who have no
        # Jupyter identity; so Jupyter's blanket authentication must let requests through.
        super().__init_subclass__(**kwargs)
        for verb in VERBS:
            if verb in cls.__dict__:
                setattr(cls, verb, allow_unauthenticated(cls.__dict__[verb]))

    @property
    def service(self) -> Service:
        return self.settings["ib_service"]

    @property
    def ib(self):
        """The extension app (its traits are the settings)."""
        return self.settings["ib_app"]

    async def prepare(self) -> None:
        await super().prepare()
        op = self.ops.get(self.request.method.lower())
        if op is None:
            raise IBError("method_not_allowed",
                          f"{self.request.method} is not allowed here; use "
                          f"{', '.join(m.upper() for m in self.ops)}.")
        auth = self.request.headers.get("Authorization", "")
        self.principal = roles.resolve(self.current_user, auth, self.settings.get("ib_service"))
        roles.require(self.principal, op.audience, auth)
        self.op = op

    def check_xsrf_cookie(self) -> None:
        # A header-authenticated request cannot be forged by another site's form.
        if self.request.headers.get("Authorization"):
            return None
        return super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, IBError):
            err = exc
        elif isinstance(exc, web.HTTPError):
            err = status_code_error(exc.status_code, exc.log_message)
        else:
            err = IBError("internal_error", "Something went wrong in the service; it has been logged.")
        self.set_status(err.status)
        for k, v in err.headers().items():
            self.set_header(k, v)
        self.finish(json.dumps(err.body()))

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, IBError):
            self.log.info("%s %s -> %d %s", self.request.method, self.request.path,
                          value.status, value.code)
        else:
            super().log_exception(typ, value, tb)

    # ---- helpers -----------------------------------------------------------------
    def body(self, model: type[BaseModel]):
        limit = self.op.max_body or self.ib.max_body_bytes
        if len(self.request.body) > limit:
            raise IBError("payload_too_large",
                          f"The request body is {len(self.request.body)} bytes; the limit is {limit}.")
        try:
            data = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise IBError("invalid_request", f"The request body is not valid JSON ({e}).") from e
        return schemas.parse(model, data)

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.get_query_argument(name, default)

    def int_query(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise IBError("invalid_request", f"Query parameter '{name}' must be an integer.",
                          param=name) from None
        if not lo <= value <= hi:
            raise IBError("invalid_request", f"Query parameter '{name}' must be between {lo} and {hi}.",
                          param=name)
        return value

    def float_query(self, name: str) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            raise IBError("invalid_request", f"Query parameter '{name}' must be a number.",
                          param=name) from None

    def date_query(self, name: str, *, end: bool = False) -> float | None:
        """A date or ISO 8601 time as epoch seconds; a bare `to` date includes that day."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise IBError("invalid_request", f"Query parameter '{name}' must be a date like "
                          "2026-11-25 or an ISO 8601 time.", param=name) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if end and len(raw) == 10:
            when += timedelta(days=1)
        return when.timestamp()

    def reply(self, data: Any, status: int | None = None) -> None:
        self.set_status(status or self.op.success)
        self.finish(json.dumps(data))

    def session_view(self, s) -> dict:
        return s.to_dict(self.service.now())

    @property
    def me(self):
        return self.principal.session


# ---- public --------------------------------------------------------------------------
class HealthHandler(IBHandler):
    ops = {"get": Op(PUBLIC, "Is the service up")}

    async def get(self) -> None:
        svc = self.settings.get("ib_service")
        self.reply({
            "status": "ok", "version": __version__, "role": self.ib.role,
            "sessions_active": sum(s.status == "active" for s in svc.sessions.values()) if svc else 0,
        })


class OpenAPIHandler(IBHandler):
    ops = {"get": Op(PUBLIC, "This API's OpenAPI 3 document")}

    async def get(self) -> None:
        from .routes import openapi

        self.reply(openapi(self.base_url))


class NotFoundHandler(IBHandler):
    """Everything under /ib/ that no route claims: a 404 in our error shape."""

    ops = {v: Op(PUBLIC, "Not found") for v in VERBS}

    async def prepare(self) -> None:
        raise IBError("not_found", f"There is nothing at {self.request.path}.")


# ---- candidate -----------------------------------------------------------------------
class ModelsV1Handler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The model this interview uses (OpenAI list shape)")}

    async def get(self) -> None:
        self.service.candidate_seen(self.me)
        self.reply({"object": "list", "data": [
            {"id": self.me.model, "object": "model", "created": int(self.me.created_at),
             "owned_by": "interview-buddy"}]})


class ChatCompletionsHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "OpenAI-compatible chat completion, streaming or not",
                      body=schemas.ChatRequest)}

    def initialize(self) -> None:
        self._disconnected = asyncio.Event()

    def on_connection_close(self) -> None:
        self._disconnected.set()

    async def post(self) -> None:
        req = self.body(schemas.ChatRequest)
        stream = gateway.chat(self.service, self.me, req, self.ib.gateway_settings(),
                              self._disconnected)
        async with aclosing(stream):
            _, reply = await stream.__anext__()  # refusals raise here, before any byte is sent
            if req.stream:
                await self._stream(stream, reply, req)
            else:
                async for kind, data in stream:
                    if kind == "end":
                        self._complete(data)

    async def _stream(self, stream, reply: gateway.Reply, req: schemas.ChatRequest) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        first = True
        async for kind, data in stream:
            if kind == "delta":
                delta = {"content": data}
                if first:
                    delta["role"] = "assistant"
                    first = False
                await self._send(_chunk(reply, [{"index": 0, "delta": delta, "finish_reason": None}]))
            elif kind == "end":
                if data.error is not None:
                    await self._send(data.error.body())
                else:
                    await self._send(_chunk(reply, [{"index": 0, "delta": {},
                                                     "finish_reason": data.finish_reason or "stop"}]))
                    if req.stream_options and req.stream_options.include_usage:
                        await self._send({**_chunk(reply, []), "usage": _usage(data)})
                    await self._send("[DONE]")
        if not self._disconnected.is_set():
            self.finish(set_content_type="text/event-stream")

    async def _send(self, payload: Any) -> None:
        if self._disconnected.is_set():
            return
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.write(f"data: {text}\n\n")
        try:
            await self.flush()
        except StreamClosedError:
            self._disconnected.set()

    def _complete(self, reply: gateway.Reply) -> None:
        if reply.error is not None and not reply.text:
            raise reply.error
        body = {
            "id": reply.id, "object": "chat.completion", "created": reply.created,
            "model": reply.model,
            "choices": [{"index": 0, "finish_reason": reply.finish_reason or "stop",
                         "message": {"role": "assistant", "content": "".join(reply.text)}}],
            "usage": _usage(reply),
        }
        if reply.error is not None:  # cut off after some text: return what was paid for
            body["choices"][0]["finish_reason"] = "length"
            body["ib_cut_off"] = reply.error.body()["error"]
        self.reply(body)


def _chunk(reply: gateway.Reply, choices: list) -> dict:
    return {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created,
            "model": reply.model, "choices": choices}


def _usage(reply: gateway.Reply) -> dict:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


class MeHandler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The candidate's own session")}

    async def get(self) -> None:
        self.service.candidate_seen(self.me)
        self.reply(self.me.to_dict(self.service.now(), view="candidate"))


class MeMessagesHandler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The candidate's own conversation")}

    async def get(self) -> None:
        rows = await self.service.store.run(self.service.store.messages, self.me.id)
        self.reply({"messages": [message_view(m) for m in rows]})


class FeedBase(IBHandler):
    async def follow(self, keep) -> None:
        feed = self.service.feed
        cursor_arg = self.query("cursor")
        epoch = self.query("epoch")
        if cursor_arg is None:
            self.reply({"epoch": feed.epoch, "cursor": feed.cursor, "reset": False, "items": []})
            return
        cursor = self.int_query("cursor", 0, 0, 2**62)
        timeout = self.int_query("timeout", 25, 0, 60)
        if epoch and epoch != feed.epoch:
            items, reset = [], True
        else:
            items, reset = await feed.wait(cursor, timeout, keep)
        self.reply({"epoch": feed.epoch, "cursor": feed.cursor, "reset": reset, "items": items})


FEED_QUERY = (("cursor", "integer", "the last cursor you got; omit to get the current one"),
              ("timeout", "integer", "seconds to wait for news, 0-60 (default 25)"),
              ("epoch", "string", "the epoch you got with the cursor"))


class MeFeedHandler(FeedBase):
    ops = {"get": Op(CANDIDATE, "Long-poll the candidate's own live feed", query=FEED_QUERY)}

    async def get(self) -> None:
        self.service.candidate_seen(self.me, active=False)
        sid = self.me.id
        await self.follow(lambda it: it["session_id"] == sid and it["audience"] in ("all", CANDIDATE))


class MeEventsHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "Report candidate activity (cell runs, snapshots, copies, pastes)",
                      body=schemas.Activity, max_body=5_000_000, success=201)}

    async def post(self) -> None:
        req = self.body(schemas.Activity)
        event = self.service.record_activity(self.me, req.type, req.payload)
        self.reply(event_view(event))


class MeSubmitHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "Submit the final notebook and end the interview",
                      body=schemas.Submit, max_body=20_000_000)}

    async def post(self) -> None:
        req = self.body(schemas.Submit)
        self.service.submit(self.me, req.notebook)
        self.reply(self.me.to_dict(self.service.now(), view="candidate"))


# ---- interviewer ---------------------------------------------------------------------
class ModelsHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "Models and assist policies sessions may use")}

    async def get(self) -> None:
        self.reply({"models": list(self.ib.models), "default": self.ib.default_model,
                    "assist_policies": list(self.ib.assist_policies),
                    "default_assist_policy": self.ib.default_assist_policy})


class SessionsHandler(IBHandler):
    ops = {
        "get": Op(INTERVIEWER, "List sessions, newest first", query=(
            ("status", "string", "comma-separated statuses"),
            ("q", "string", "text in the candidate, challenge or conversation"),
            ("challenge_id", "string", "sessions of one challenge"),
            ("candidate", "string", "part of the candidate's name"),
            ("from", "string", "created on or after this date (YYYY-MM-DD or ISO 8601)"),
            ("to", "string", "created on or before this date (YYYY-MM-DD: the whole day)"),
            ("min_score", "number", "graded at least this (0-1)"),
            ("max_score", "number", "graded at most this (0-1)"),
            ("limit", "integer", "page size, 1-500 (default 50)"),
            ("offset", "integer", "rows to skip"))),
        "post": Op(INTERVIEWER, "Create a session", body=schemas.CreateSession, success=201),
    }

    async def get(self) -> None:
        svc = self.service
        f = SessionFilter(
            status=[s for s in (self.query("status") or "").split(",") if s],
            q=(self.query("q") or "").strip(), challenge_id=self.query("challenge_id"),
            candidate=self.query("candidate"),
            created_from=self.date_query("from"), created_to=self.date_query("to", end=True),
            min_score=self.float_query("min_score"), max_score=self.float_query("max_score"))
        unknown = set(f.status) - STATUSES
        if unknown:
            raise IBError("invalid_request", f"Unknown status '{sorted(unknown)[0]}'; use "
                          f"{', '.join(sorted(STATUSES))}.", param="status")
        matches = await svc.store.run(svc.store.search_messages, f.q) if f.q else None
        found = svc.list(f, matches)
        limit = self.int_query("limit", 50, 1, 500)
        offset = self.int_query("offset", 0, 0, 10**9)
        self.reply({"sessions": [self.session_view(s) for s in found[offset:offset + limit]],
                    "total": len(found), "cursor": svc.feed.cursor, "epoch": svc.feed.epoch})

    async def post(self) -> None:
        req = self.body(schemas.CreateSession)
        s, token = self.service.create(req)
        self.reply({"id": s.id, "candidate_token": token, "session": self.session_view(s)})


class SessionHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "One session")}

    async def get(self, session_id: str) -> None:
        self.reply(self.session_view(self.service.get(session_id)))


class SessionActionHandler(IBHandler):
    """start, pause, resume, lock, unlock, end: one route each, one handler."""

    ops = {"post": Op(INTERVIEWER, "Change a session's state")}
    ACTIONS = ("start", "pause", "resume", "lock", "unlock", "end")

    def initialize(self, action: str) -> None:
        self.action = action

    async def post(self, session_id: str) -> None:
        if self.request.body.strip() not in (b"", b"{}", b"null"):
            raise IBError("invalid_request", f"The {self.action} action takes no request body.")
        self.reply(self.session_view(self.service.act(session_id, self.action)))


assert set(SessionActionHandler.ACTIONS) - {"lock", "unlock"} <= set(TRANSITIONS)


class ExtendTimeHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Give a session more time", body=schemas.ExtendTime)}

    async def post(self, session_id: str) -> None:
        req = self.body(schemas.ExtendTime)
        self.reply(self.session_view(self.service.extend_time(session_id, req.seconds)))


class ExtendTokensHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Give a session more tokens", body=schemas.ExtendTokens)}

    async def post(self, session_id: str) -> None:
        req = self.body(schemas.ExtendTokens)
        self.reply(self.session_view(self.service.extend_tokens(session_id, req.tokens)))


class TokenHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Issue a new candidate token (the old one stops working)")}

    async def post(self, session_id: str) -> None:
        self.reply({"id": session_id, "candidate_token": self.service.rotate_token(session_id)})


class SessionMessagesHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "A session's conversation")}

    async def get(self, session_id: str) -> None:
        svc = self.service
        svc.get(session_id)
        rows = await svc.store.run(svc.store.messages, session_id)
        self.reply({"messages": [message_view(m) for m in rows]})


class SessionEventsHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "A session's events, oldest first", query=(
        ("type", "string", "comma-separated types; a trailing * matches a prefix"),))}

    async def get(self, session_id: str) -> None:
        svc = self.service
        svc.get(session_id)
        types = [t for t in (self.query("type") or "").split(",") if t]
        rows = await svc.store.run(svc.store.events, session_id, types or None)
        self.reply({"events": [event_view(e) for e in rows]})


class SessionRecordHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "Everything about one session, for analytics and export")}

    async def get(self, session_id: str) -> None:
        self.reply(await self.service.record(session_id))


class FeedHandler(FeedBase):
    ops = {"get": Op(INTERVIEWER, "Long-poll the live feed of every session",
                     query=FEED_QUERY + (("session_id", "string", "follow one session only"),))}

    async def get(self) -> None:
        sid = self.query("session_id")
        await self.follow(lambda it: it["audience"] in ("all", INTERVIEWER)
                          and (sid is None or it["session_id"] == sid))


# ---- challenge library ---------------------------------------------------------------
def _library(handler: IBHandler):
    lib = handler.service.challenges
    if lib is None:
        raise IBError("not_found", "This service has no challenge library.")
    return lib


class ChallengesHandler(IBHandler):
    ops = {
        "get": Op(INTERVIEWER, "List or search the challenge library", query=(
            ("q", "string", "words that must all appear"), ("category", "string", ""),
            ("difficulty", "string", "easy, medium or hard"), ("tag", "string", ""))),
        "post": Op(INTERVIEWER, "Add an interviewer-made challenge (fields, or `source`: "
                                "the text of a challenge file)", body=schemas.NewChallenge,
                   success=201),
    }

    async def get(self) -> None:
        lib = _library(self)
        try:
            found = lib.search(q=self.query("q"), category=self.query("category"),
                               difficulty=self.query("difficulty"), tag=self.query("tag"))
        except ValueError as e:
            raise IBError("invalid_request", f"{str(e)[0].upper()}{str(e)[1:]}.") from e
        self.reply({"challenges": [ch.public() | {"source": lib.sources.get(ch.id)}
                                   for ch in found],
                    "errors": [{"source": src, "problem": problem} for src, problem in lib.errors]})

    async def post(self) -> None:
        req = self.body(schemas.NewChallenge)
        fields = None if req.source is not None else dict(req.model_extra or {})
        ch = self.service.add_challenge(fields, req.source)
        self.reply(ch.interviewer())


class ChallengeHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "One challenge, hidden tests and notes included")}

    async def get(self, challenge_id: str) -> None:
        ch = _library(self).get(challenge_id)
        if ch is None:
            raise IBError("not_found", f"There is no challenge with id '{challenge_id}'.")
        self.reply(ch.interviewer())


class GradeHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Grade (again) the session's final notebook")}

    async def post(self, session_id: str) -> None:
        s = self.service.get(session_id)
        if not s.ended:
            raise IBError("conflict", f"Session {session_id} has not ended; grade it after it ends.")
        result = await self.service.grade(session_id)
        if result is None:
            raise IBError("conflict", "There is nothing to grade: no final notebook, or a "
                          "challenge without tests.")
        self.reply(self.session_view(s))
