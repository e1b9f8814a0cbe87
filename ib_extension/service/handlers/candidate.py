"""Handlers of the candidate's routes: the OpenAI-compatible chat API and /ib/api/me*.

A candidate principal always carries its own session (`self.me`); no route here takes a
session id, so a candidate token cannot name another session.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from typing import Any

from tornado.iostream import StreamClosedError

from ...api import models as m
from ...api import requests as schemas
from .. import gateway
from ..core import feed_event
from ..roles import CANDIDATE
from .base import FEED_QUERY, FeedBase, IBHandler, Op


class ModelsV1Handler(IBHandler):
    ops = {"get": Op(CANDIDATE, "The model this interview uses (OpenAI list shape)")}

    async def get(self) -> None:
        self.reply({"object": "list", "data": [
            {"id": self.me.model, "object": "model", "created": int(self.me.created_at),
             "owned_by": "interview-buddy"}]})


class ChatCompletionsHandler(IBHandler):
    ops = {"post": Op(CANDIDATE, "OpenAI-compatible chat completion, streaming or not",
                      body=schemas.ChatRequest, streams=True)}

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
