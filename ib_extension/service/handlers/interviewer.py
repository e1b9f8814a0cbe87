"""Handlers of the interviewer's routes: sessions, controls, history, feed, challenges."""

from __future__ import annotations

from ...api import models as m
from ...api import requests as schemas
from ...api.errors import IBError
from ..core import SessionFilter
from ..idempotency import HEADER
from ..roles import INTERVIEWER
from ..sessions import STATUSES, TRANSITIONS
from .base import FEED_QUERY, FeedBase, IBHandler, Op
from .hub import workspaces

STATUS_LIST = f"^({'|'.join(sorted(STATUSES))})(,({'|'.join(sorted(STATUSES))}))*$"
DATE = {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}


class ModelsHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "Models and assist policies sessions may use",
                     response=m.ModelsInfo)}

    async def get(self) -> None:
        self.reply(m.ModelsInfo(models=list(self.ib.models), default=self.ib.default_model,
                                assist_policies=list(self.ib.assist_policies),
                                assist_policy_texts=dict(self.ib.assist_policies),
                                default_assist_policy=self.ib.default_assist_policy,
                                candidate_links=self.service.workspaces is not None))


class SessionsHandler(IBHandler):
    ops = {
        "get": Op(INTERVIEWER, "List sessions, newest first", query=(
            ("status", {"type": "string", "pattern": STATUS_LIST},
             "comma-separated statuses"),
            ("q", "string", "text in the candidate, challenge or conversation"),
            ("challenge_id", "string", "sessions of one challenge"),
            ("candidate", "string", "part of the candidate's name"),
            ("from", DATE, "created on or after this date (YYYY-MM-DD or ISO 8601)"),
            ("to", DATE, "created on or before this date (YYYY-MM-DD: the whole day)"),
            ("min_score", "number", "graded at least this (0-1)"),
            ("max_score", "number", "graded at most this (0-1)"),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 500},
             "page size, 1-500 (default 50)"),
            ("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}, "rows to skip")),
            response=m.SessionPage),
        "post": Op(INTERVIEWER, "Create a session (idempotent with an Idempotency-Key)",
                   body=schemas.CreateSession, success=201, response=m.CreatedSession,
                   headers=((HEADER, {"type": "string", "minLength": 1, "maxLength": 255,
                                      "pattern": "^[\\x21-\\x7e]+$"},
                             "the same key with the same request gives the same session "
                             "(for an hour)"),)),
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
        matches = await svc.conversation_matches(f.q) if f.q else None
        found = svc.list(f, matches)
        limit = self.int_query("limit", 50, 1, 500)
        offset = self.int_query("offset", 0, 0, 10**9)
        self.reply(m.SessionPage(sessions=[svc.view(s) for s in found[offset:offset + limit]],
                                 total=len(found), cursor=svc.feed.cursor, epoch=svc.feed.epoch))

    async def post(self) -> None:
        req = self.body(schemas.CreateSession)
        s, token, replayed = self.service.create_once(req, self.request.headers.get(HEADER))
        if replayed:
            self.set_header("Idempotent-Replayed", "true")
        spaces = self.service.workspaces
        # On JupyterHub: the one link the candidate needs. Links are kept only hashed, so a
        # replayed create issues a fresh one (the earlier one stops working).
        url = spaces.candidate_url(spaces.issue_link(s), self.origin()) if spaces else None
        self.reply(m.CreatedSession(id=s.id, candidate_token=token, candidate_url=url,
                                    session=self.service.view(s)))


class SessionHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "One session", response=m.SessionView)}

    async def get(self, session_id: str) -> None:
        self.reply(self.service.view(self.service.get(session_id)))


class SessionActionHandler(IBHandler):
    """start, pause, resume, lock, unlock, end: one route each, one handler."""

    ops = {"post": Op(INTERVIEWER, "Change a session's state", response=m.SessionView)}
    ACTIONS = ("start", "pause", "resume", "lock", "unlock", "end")

    def initialize(self, action: str) -> None:
        self.action = action

    async def post(self, session_id: str) -> None:
        if self.raw_body.strip() not in (b"", b"{}", b"null"):
            raise IBError("invalid_request", f"The {self.action} action takes no request body.")
        self.reply(self.service.view(self.service.act(session_id, self.action)))


assert set(SessionActionHandler.ACTIONS) - {"lock", "unlock"} <= set(TRANSITIONS)


class ExtendTimeHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Give a session more time", body=schemas.ExtendTime,
                      response=m.SessionView)}

    async def post(self, session_id: str) -> None:
        req = self.body(schemas.ExtendTime)
        self.reply(self.service.view(self.service.extend_time(session_id, req.seconds)))


class ExtendTokensHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Give a session more tokens", body=schemas.ExtendTokens,
                      response=m.SessionView)}

    async def post(self, session_id: str) -> None:
        req = self.body(schemas.ExtendTokens)
        self.reply(self.service.view(self.service.extend_tokens(session_id, req.tokens)))


class TokenHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Issue a new candidate token (the old one stops working)",
                      response=m.IssuedToken)}

    async def post(self, session_id: str) -> None:
        self.reply(m.IssuedToken(id=session_id, candidate_token=self.service.rotate_token(session_id)))


class LinkHandler(IBHandler):
    ops = {"post": Op(INTERVIEWER, "Issue a new candidate link (on JupyterHub; the old link "
                                   "stops working and the next browser to open it claims it)",
                      response=m.IssuedLink)}

    async def post(self, session_id: str) -> None:
        spaces = workspaces(self)
        code = spaces.issue_link(self.service.get(session_id))
        self.reply(m.IssuedLink(id=session_id, candidate_url=spaces.candidate_url(code, self.origin())))


class SessionMessagesHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "A session's conversation", response=m.Messages)}

    async def get(self, session_id: str) -> None:
        svc = self.service
        svc.get(session_id)
        self.reply(m.Messages(messages=await svc.messages(session_id)))


class SessionEventsHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "A session's events, oldest first", query=(
        ("type", "string", "comma-separated types; a trailing * matches a prefix"),),
        response=m.Events)}

    async def get(self, session_id: str) -> None:
        svc = self.service
        svc.get(session_id)
        types = [t for t in (self.query("type") or "").split(",") if t]
        self.reply(m.Events(events=await svc.events(session_id, types or None)))


class SessionEventHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "One event with its whole payload (the feed refers to big "
                                  "payloads by this address)", response=m.Event)}

    async def get(self, session_id: str, event_id: str) -> None:
        self.reply(await self.service.event(session_id, event_id))


class SessionRecordHandler(IBHandler):
    ops = {"get": Op(INTERVIEWER, "Everything about one session, for analytics and export",
                     response=m.Record)}

    async def get(self, session_id: str) -> None:
        self.reply(await self.service.record(session_id))


class FeedHandler(FeedBase):
    ops = {"get": Op(INTERVIEWER, "Long-poll the live feed of every session",
                     query=FEED_QUERY + (("session_id", "string", "follow one session only"),),
                     response=m.FeedPage)}

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
            ("difficulty", {"type": "string", "enum": ["easy", "medium", "hard"]},
             "easy, medium or hard"), ("tag", "string", ""))),
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
    ops = {"post": Op(INTERVIEWER, "Grade (again) the session's final notebook",
                      response=m.SessionView)}

    async def post(self, session_id: str) -> None:
        s = self.service.get(session_id)
        if not s.ended:
            raise IBError("conflict", f"Session {session_id} has not ended; grade it after it ends.")
        result = await self.service.grade(session_id)
        if result is None:
            raise IBError("conflict", "There is nothing to grade: no final notebook, or a "
                          "challenge without tests.")
        self.reply(self.service.view(s))
