"""Handlers of the candidate's routes: the OpenAI-compatible chat API and /ib/api/me*.

A candidate principal always carries its own session (`self.me`); no route here takes a
session id, so a candidate token cannot name another session.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

from tornado.iostream import StreamClosedError

from ...api import fast_json
from ...api import models as m
from ...api import requests as schemas
from ...api.chat import ChatRequest
from ...api.errors import IBError
from ...api.responses import EventStream, ResponsesRequest, output_items, response_object
from .. import gateway, responses_api
from ..core import feed_event
from ..roles import CANDIDATE
from .base import FEED_QUERY, FeedBase, IBHandler, Op


class ModelsV1Handler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The model this interview uses (OpenAI list shape)")}

    async def get(self) -> None:
        self.reply({"object": "list", "data": [_model(self.me)]})


class ModelV1Handler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The interview's model by its id (OpenAI model shape)")}

    async def get(self, model_id: str) -> None:
        if model_id != self.me.model:  # a client's mistake: not activity
            raise IBError("not_found", f"This interview uses the model '{self.me.model}', "
                          f"not '{model_id}'.", param="model")
        self.reply(_model(self.me))


def _model(s) -> dict:
    return {"id": s.model, "object": "model", "created": int(s.created_at),
            "owned_by": "interview-buddy"}


class _GatewayHandler(IBHandler):
    """A candidate route answered by the gateway: streams server-sent events or JSON."""

    def initialize(self) -> None:
        self._disconnected = asyncio.Event()

    def on_connection_close(self) -> None:
        self._disconnected.set()

    def _chat(self, req: ChatRequest):
        return gateway.chat(self.service, self.me, req, self.ib.gateway_settings(),
                            self._disconnected)

    def _open_stream(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        # Each read from the provider goes out as it comes: Nagle's algorithm would hold a
        # small write until the last one is acknowledged (tornado turns it back on after).
        self.request.connection.stream.set_nodelay(True)

    def _write(self, payload: Any, event: str | None = None) -> None:
        """Queue one server-sent event; `_flush` sends what is queued."""
        if self._disconnected.is_set():
            return
        text = payload.encode() if isinstance(payload, str) else fast_json.dumps(payload)
        self.write((f"event: {event}\n" if event else "").encode() + b"data: " + text + b"\n\n")

    async def _flush(self) -> None:
        if self._disconnected.is_set():
            return
        try:
            await self.flush()
        except StreamClosedError:
            self._disconnected.set()

    async def _send(self, payload: Any, event: str | None = None) -> None:
        self._write(payload, event)
        await self._flush()

    def _close_stream(self) -> None:
        if not self._disconnected.is_set():
            self.finish(set_content_type="text/event-stream")


class ChatCompletionsHandler(_GatewayHandler):
    ops = {"post": Op(CANDIDATE, "OpenAI-compatible chat completion, streaming or not",
                      body=ChatRequest, streams=True)}

    async def post(self) -> None:
        req = self.body(ChatRequest)
        async with aclosing(self._chat(req)) as stream:
            _, reply = await stream.__anext__()  # refusals raise here, before any byte is sent
            if req.stream:
                await self._stream(stream, reply, req)
            else:
                async for kind, data in stream:
                    if kind == "end" and not self._disconnected.is_set():
                        self._complete(data)

    async def _stream(self, stream, reply: gateway.Reply, req: ChatRequest) -> None:
        self._open_stream()
        first = True
        async for kind, data in stream:
            if kind == "deltas":
                for delta in data:
                    if first:
                        delta = {"role": "assistant", **delta}
                        first = False
                    self._write(_chunk(reply, [{"index": 0, "delta": delta,
                                                "finish_reason": None}]))
                await self._flush()  # one send per read from the provider
            elif kind == "end":  # the closing events go out with the end of the body
                if data.error is not None:
                    self._write(data.error.body())
                else:
                    self._write(_chunk(reply, [{"index": 0, "delta": {},
                                                "finish_reason": _finish(data)}]))
                    if req.stream_options and req.stream_options.include_usage:
                        self._write({**_chunk(reply, []), "usage": _usage(data)})
                    self._write("[DONE]")
        self._close_stream()

    def _complete(self, reply: gateway.Reply) -> None:
        if reply.error is not None:
            # Cut off (pause, lock, end, time up) or failed: the partial reply is logged and
            # charged, and the client gets the reason, never a silently short answer.
            raise reply.error
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None,
                                   "refusal": "".join(reply.refusal) or None}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        self.reply({
            "id": reply.id, "object": "chat.completion", "created": reply.created,
            "model": reply.model,
            "choices": [{"index": 0, "finish_reason": _finish(reply), "message": message,
                         "logprobs": None}],
            "usage": _usage(reply),
        })


class ResponsesHandler(_GatewayHandler):
    ops = {"post": Op(CANDIDATE, "OpenAI Responses API without server-side state: text and "
                                 "function tools, streaming or not", body=ResponsesRequest,
                      streams=True)}

    async def post(self) -> None:
        req = self.body(ResponsesRequest)
        chat_req = responses_api.to_chat(req)
        async with aclosing(self._chat(chat_req)) as stream:
            _, reply = await stream.__anext__()  # refusals raise here, before any byte is sent
            events = EventStream(req, reply.id, reply.created, reply.model)
            if req.stream:
                self._open_stream()
                for ev in events.start():
                    await self._send(ev, ev["type"])
            async for kind, data in stream:
                if kind == "deltas" and req.stream:
                    for delta in data:
                        for ev in events.delta(delta):
                            self._write(ev, ev["type"])
                    await self._flush()
                elif kind == "end" and req.stream:  # sent with the end of the body
                    if data.error is not None:
                        self._write(events.error(data.error.body()), "error")
                    else:
                        for ev in events.end(_finish(data), _tokens(data)):
                            self._write(ev, ev["type"])
                elif kind == "end" and not self._disconnected.is_set():
                    if data.error is not None:
                        raise data.error  # cut off or failed: charged, and said so
                    status = "incomplete" if _finish(data) == "length" else "completed"
                    output = output_items(reply.id, data.content or "".join(data.refusal),
                                          data.tool_calls)
                    self.reply(response_object(req, response_id=reply.id, created=reply.created,
                                               model=reply.model, status=status, output=output,
                                               usage=_tokens(data)))
            if req.stream:
                self._close_stream()


def _tokens(reply: gateway.Reply) -> tuple[int, int]:
    return reply.prompt_tokens, reply.completion_tokens


def _finish(reply: gateway.Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _chunk(reply: gateway.Reply, choices: list) -> dict:
    return {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created,
            "model": reply.model, "choices": choices}


def _usage(reply: gateway.Reply) -> dict:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


class MeHandler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The candidate's own session", response=m.CandidateSessionView)}

    async def get(self) -> None:
        self.reply(self.service.candidate_view(self.me))


class MeMessagesHandler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The candidate's own conversation", response=m.Messages)}

    async def get(self) -> None:
        self.reply(m.Messages(messages=await self.service.messages(self.me.id)))


class MeFeedHandler(FeedBase):
    ops = {"get": Op(CANDIDATE, "Long-poll the candidate's own live feed", query=FEED_QUERY,
                     response=m.FeedPage)}

    async def get(self) -> None:
        sid = self.me.id
        await self.follow(lambda it: it["session_id"] == sid and it["audience"] in ("all", CANDIDATE))


class MeEventsHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "Report candidate activity (cell runs, snapshots, copies, pastes)",
                      body=schemas.Activity, max_body=5_000_000, success=201,
                      response=m.FeedEvent)}

    async def prepare(self) -> None:
        await super().prepare()
        announced = self.request.headers.get("Content-Length", "")
        if announced.isdigit():  # a session at its quota has its flood refused unread
            self.service.check_activity_room(self.me, None, int(announced))

    async def post(self) -> None:
        req = self.body(schemas.Activity)
        event = self.service.record_activity(self.me, req.type, req.payload)
        self.reply(feed_event(event))  # no echo of a big payload


class MeSubmitHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "Submit the final notebook and end the interview",
                      body=schemas.Submit, max_body=20_000_000,
                      response=m.CandidateSessionView)}

    async def post(self) -> None:
        req = self.body(schemas.Submit)
        self.service.submit(self.me, req.notebook, req.path)
        self.reply(self.service.candidate_view(self.me))


class MeOpenedHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "The workspace was opened in a browser: starts the clock",
                      response=m.CandidateSessionView)}

    async def post(self) -> None:
        self.service.workspace_opened(self.me)
        self.reply(self.service.candidate_view(self.me))


class MeHandInHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "After the end: the workspace hands in the final notebook",
                      body=schemas.HandIn, max_body=20_000_000,
                      response=m.CandidateSessionView)}

    async def post(self) -> None:
        req = self.body(schemas.HandIn)
        self.service.hand_in(self.me, req.notebook, by="workspace", path=req.path)
        self.reply(self.service.candidate_view(self.me))
