"""The ib service's state: sessions, their lifecycle, events and the live feed.

Everything here runs on the event loop's thread; the DuckDB file is written through the
Store's single database thread. Memory is the authority for live state, and every change
is queued to the file before the next one is made, so a restart (even after SIGKILL)
finds what clients were told.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..api import events as catalogue
from ..api.errors import IBError
from ..api.models import Event, FeedEvent, Message, Record, iso
from ..api.requests import CreateSession
from ..grading.sandbox import SandboxUnavailable
from . import chat_log, tokens
from .admission import Gate
from .budget import Ledger
from .conversation_cache import ConversationCache
from .feed import Feed
from .idempotency import Idempotency
from .quotas import Quota, Usage
from .ratelimit import SlidingWindow
from .refusals import RefusalCounter
from .sessions import Session, hash_token, new_id, new_token
from .store import Encoded, Store
from .word_index import WordIndex, words

log = logging.getLogger("ib_extension.service.core")

# Why a running stream is cut, per state change.
CUT_REASONS = {
    "pause": ("session_paused", "The interviewer paused the session; the reply was cut off here."),
    "lock": ("session_locked", "The interviewer locked the AI assistant; the reply was cut off here."),
    "end": ("session_ended", "The session has ended; the reply was cut off here."),
    "submit": ("session_ended", "You submitted your work; the reply was cut off here."),
    "expire": ("time_up", "Time is up; the reply was cut off here."),
}


@dataclass
class SessionFilter:
    status: list[str] = field(default_factory=list)
    q: str = ""  # in the id, candidate, challenge title or (via the store) the conversation
    challenge_id: str | None = None
    candidate: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    min_score: float | None = None
    max_score: float | None = None

    def admits(self, s: Session, conversation_matches: set[str] | None) -> bool:
        # One check at a time, cheapest first: the list runs this for every session.
        if self.status and s.status not in self.status:
            return False
        if self.created_from is not None and s.created_at < self.created_from:
            return False
        if self.created_to is not None and s.created_at >= self.created_to:
            return False
        if self.challenge_id and s.challenge.get("id") != self.challenge_id:
            return False
        if self.candidate and self.candidate.lower() not in s.candidate_name.lower():
            return False
        if self.min_score is not None or self.max_score is not None:
            score = s.grade.get("score") if s.grade else None
            if score is None or (self.min_score is not None and score < self.min_score) or (
                    self.max_score is not None and score > self.max_score):
                return False
        if self.q:
            if conversation_matches and s.id in conversation_matches:
                return True
            hay = " ".join([s.id, s.candidate_name, s.candidate_email or "",
                            s.challenge.get("title") or ""]).lower()
            return self.q.lower() in hay
        return True


class Config(Protocol):
    """The settings the service reads (the IBExtension traits)."""

    models: list[str]
    default_model: str
    assist_policies: dict[str, str]
    default_assist_policy: str
    warning_thresholds: list[int]
    rate_limit_per_minute: int
    max_concurrent_provider_calls: int
    activity_event_quota: int
    snapshot_quota: int
    activity_bytes_quota: int
    max_provider_calls_per_session: int
    hand_in_grace_seconds: float


class Clock(Protocol):
    def now(self) -> float: ...


class Service:
    def __init__(self, config: Config, store: Store, clock: Clock, provider: Any,
                 challenges: Any = None, grader: Any = None):
        self.config = config
        self.store = store
        self.clock = clock
        self.provider = provider
        self.challenges = challenges
        self.grader = grader  # async (notebook, challenge) -> result, or None: no grading
        # Candidates' workspaces on JupyterHub (service/workspaces.py), or None on its own.
        self.workspaces: Any = None
        self._background: set[asyncio.Task] = set()
        self.sessions: dict[str, Session] = {}
        self._by_token: dict[str, str] = {}
        self.feed = Feed()
        self.rate = SlidingWindow(config.rate_limit_per_minute)
        self.refusals = RefusalCounter()
        self.provider_slots = asyncio.Semaphore(config.max_concurrent_provider_calls)
        # session id -> the cut-off events of its running (or waiting) chat requests
        self.streams: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._gates: dict[str, Gate] = {}
        self._conversations: dict[str, ConversationCache] = {}
        self._replies: dict[str, chat_log.Replies] = {}  # session id -> the replies it was given
        self.flagged_seen: dict[str, set[str]] = defaultdict(set)
        self.load_seconds = 0.0  # how long load() took (the start-up log says it)
        self._event_id = 0
        self._message_seq = 0  # conversation order, even when two messages share a timestamp
        self.quota = Quota(config.activity_event_quota, config.snapshot_quota,
                           config.activity_bytes_quota)
        self.usage: dict[str, Usage] = defaultdict(Usage)  # session id -> activity stored
        self.idempotency = Idempotency()
        # session id -> set when its final notebook has arrived (grading waits for it)
        self._handed_in: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.words = WordIndex()  # history search; filled from the file after load()
        self._filling: threading.Thread | None = None
        self._reader: Any = None  # the fill's own DuckDB connection

    def now(self) -> float:
        return self.clock.now()

    # ---- start and stop ----------------------------------------------------------
    def load(self) -> None:
        """Open the file, bring sessions into memory, settle what a crash left open."""
        started = time.perf_counter()
        self.store.open()
        for row in self.store.submit(self.store.load_sessions).result():
            s = Session.from_row(row)
            self.sessions[s.id] = s
            self._by_token[s.token_hash] = s.id
        self._event_id = self.store.submit(self.store.max_event_id).result()
        self._message_seq = self.store.submit(self.store.max_message_seq).result()
        for sid, events, snapshots, size in self.store.submit(self.store.activity_usage).result():
            self.usage[sid] = Usage(events, snapshots, size)
        for sid, hand_in in self.store.submit(self.store.hand_ins).result():
            if sid in self.sessions and self.sessions[sid].handed_in is None:
                self.sessions[sid].handed_in = hand_in
        for msg in self.store.submit(self.store.streaming_messages).result():
            self._recover_interrupted(msg)
        if self.challenges is not None:
            for challenge_id, source in self.store.submit(self.store.challenges).result():
                self._add_challenge_source(source, f"custom:{challenge_id}")
        tokens.preload(self.config.models)
        self.load_seconds = time.perf_counter() - started
        self._reader = self.store.reader()
        self._filling = threading.Thread(target=self._fill_words, args=(self._reader,),
                                         name="ib-word-index", daemon=True)
        self._filling.start()

    def _fill_words(self, reader: Any) -> None:
        """History search's index, from the file, beside the service's work (until it is
        done, searches scan the messages)."""
        started = time.perf_counter()
        try:
            self.words.fill(self.store.conversation_words(reader))
        except Exception:
            if self._reader is not None:  # not interrupted by close(): broken
                log.exception("history search index not filled; searches scan the file")
            return
        finally:
            reader.close()
        log.info("history search index: filled from the file in %.2f s",
                 time.perf_counter() - started)

    def _recover_interrupted(self, msg: dict[str, Any]) -> None:
        """A reply that was streaming when the process died: charge what was sent."""
        s = self.sessions.get(msg["session_id"])
        msg["status"] = "interrupted"
        msg["completion_tokens"] = tokens.count_tokens(msg["content"], msg["model"] or "")
        msg["finished_at"] = msg["finished_at"] or msg["created_at"]
        self.store.save_message(msg)
        if s is not None:
            s.ledger.settle(msg["id"], msg.get("prompt_tokens") or 0, msg["completion_tokens"])
            s.message_count += 1
            self.emit(s, "chat.cut", "system",
                      {"message_id": msg["id"], "reason": "service_restarted"})
            self.save(s)
        log.warning("reply %s was interrupted by a restart; charged what was sent", msg["id"])

    async def close(self) -> None:
        """Stop background work and running streams, then close the file."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for events in self.streams.values():
            for ev in events:
                ev.set()
        self._summarise_refusals(self.refusals.due(self.now(), everything=True))
        if self._filling is not None and self._filling.is_alive():
            reader, self._reader = self._reader, None
            try:
                reader.interrupt()
            except Exception:  # the fill closed it in between: nothing to interrupt
                pass
            self._filling.join()
        self.store.close()

    async def run_ticks(self, interval: float) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the clock must keep running whatever one session does
                log.exception("tick failed")
            await asyncio.sleep(interval)

    def tick(self) -> None:
        """Expire sessions whose time ran out, send due time warnings, store the refusals
        counted in windows that are over, and let the workspaces catch up (closes missed
        while the service was down, removals)."""
        now = self.now()
        self._summarise_refusals(self.refusals.due(now))
        for s in list(self.sessions.values()):
            if s.status == "active" and s.time_left(now) <= 0:
                self._transition(s, "expire", "system")
            elif s.status == "active":
                self.check_warnings(s)
        if self.workspaces is not None:
            self.workspaces.tick(now)

    # ---- persistence and publication -----------------------------------------------
    def save(self, s: Session, *, publish: bool = True) -> None:
        """Queue the session's row and (unless the caller does it later) tell live readers
        its new state."""
        self.store.save_session(s.to_row())
        if publish:
            self.publish_session(s)

    def publish_session(self, s: Session) -> None:
        view, candidate_view = s.views(self.now(), self.config.warning_thresholds)
        self.feed.publish(s.id, "session", view, audience="interviewer")
        self.feed.publish(s.id, "session", candidate_view, audience="candidate")

    def view(self, s: Session):
        return s.view(self.now(), self.config.warning_thresholds)

    def candidate_view(self, s: Session):
        return s.candidate_view(self.now(), self.config.warning_thresholds)

    def emit(self, s: Session, type_: str, actor: str, payload: dict[str, Any] | None = None,
             *, audience: str | None = None, encoded: str | None = None) -> dict[str, Any]:
        """Log an event of the catalogue (api/events.py), which says who may see it, and
        publish it; a big payload is queued for the file as its JSON text (`encoded`, if
        the caller has it) and reaches the feed as a reference."""
        catalogue.check_payload(type_, payload or {})
        audience = audience or catalogue.kind(type_).audience
        self._event_id += 1
        row = {"id": self._event_id, "session_id": s.id, "type": type_, "actor": actor,
               "payload": payload or {}, "at": self.now()}
        encoded = json.dumps(row["payload"]) if encoded is None else encoded
        self.store.save_event({**row, "payload": Encoded(encoded)})
        row["payload_bytes"] = len(encoded)
        self.feed.publish(s.id, "event", feed_event(row), audience=audience)
        return row

    def save_message(self, msg: dict[str, Any], *, publish: bool = True) -> None:
        new = "seq" not in msg  # its first write: a new id
        if new:
            self._message_seq += 1
            msg["seq"] = self._message_seq
        self.store.save_message(msg, new=new)
        if msg["status"] != "streaming":  # a streaming reply is indexed when it is over
            self.soon_after_tasks(self.words.add, msg["session_id"], msg["content"])
        if publish:
            self.publish_message(msg)

    def publish_message(self, msg: dict[str, Any]) -> None:
        self.feed.publish(msg["session_id"], "message", message_view(msg))

    @staticmethod
    def soon(fn: Callable[..., Any], *args: Any) -> None:
        """`fn(*args)` once the caller yields to the loop, off the way to the first token
        (at once when no loop runs: loading, tools)."""
        try:
            asyncio.get_running_loop().call_soon(fn, *args)
        except RuntimeError:
            fn(*args)

    @classmethod
    def soon_after_tasks(cls, fn: Callable[..., Any], *args: Any) -> None:
        """`fn(*args)` a loop turn after `soon` would: after the first step of tasks made
        before the caller yields. aiohttp writes a request from a task of its own (before
        Python 3.12), so work `soon` put first delayed the provider's request by its time."""
        cls.soon(cls.soon, fn, *args)

    # ---- lookups -----------------------------------------------------------------
    def get(self, session_id: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            raise IBError("not_found", f"There is no session with id '{session_id}'.")
        return s

    def session_for_token(self, token: str) -> Session | None:
        sid = self._by_token.get(hash_token(token))
        return self.sessions.get(sid) if sid else None

    def list(self, f: SessionFilter, conversation_matches: set[str] | None = None) -> list[Session]:
        """Sessions matching every filter, newest first (in memory: fast for thousands)."""
        found = list(self.sessions.values())
        if f.status:  # the dashboards' usual filter: one comprehension, no call per session
            wanted = set(f.status)
            found = [s for s in found if s.status in wanted]
        rest = replace(f, status=[])
        if rest != SessionFilter():
            found = [s for s in found if rest.admits(s, conversation_matches)]
        found.sort(key=_created_at, reverse=True)
        return found

    # ---- interviewer actions -----------------------------------------------------
    def create(self, req: CreateSession, actor: str = "interviewer") -> tuple[Session, str]:
        model = req.model or self.config.default_model
        if model not in self.config.models:
            raise IBError("invalid_request",
                          f"Model '{model}' is not offered here; choose one of: "
                          f"{', '.join(self.config.models)}.", param="model")
        policy = req.assist_policy or self.config.default_assist_policy
        if policy not in self.config.assist_policies:
            raise IBError("invalid_request",
                          f"Assist policy '{policy}' is unknown; choose one of: "
                          f"{', '.join(self.config.assist_policies)}.", param="assist_policy")
        challenge = self._challenge_for(req)
        token = new_token()
        now = self.now()
        s = Session(
            id=new_id("s"), candidate_name=req.candidate_name,
            candidate_email=req.candidate_email, challenge=challenge, model=model,
            assist_policy=policy, time_limit_seconds=float(req.time_limit_seconds),
            ledger=Ledger(req.token_budget), token_hash=hash_token(token), created_at=now,
            last_activity_at=now,
        )
        self.sessions[s.id] = s
        self._by_token[s.token_hash] = s.id
        self.emit(s, "session.created", actor, {
            "time_limit_seconds": req.time_limit_seconds, "token_budget": req.token_budget,
            "model": model, "assist_policy": policy, "challenge_id": challenge.get("id"),
        })
        self.save(s)
        return s, token

    def create_once(self, req: CreateSession, key: str | None) -> tuple[Session, str, bool]:
        """`create`, unless `key` (the request's Idempotency-Key) already created a session
        from the same request: then that session and its token. The flag says which."""
        if key is None:
            return (*self.create(req), False)
        self.idempotency.check(key)
        body = req.model_dump()
        found = self.idempotency.recall(key, body, self.now())
        if found is not None:
            s = self.get(found.session_id)
            if s.token_hash != hash_token(found.token):
                raise IBError("conflict", f"Session {s.id} was created with this key, and its "
                              "candidate token has been replaced since; issue a new one with "
                              f"POST /ib/api/sessions/{s.id}/token.")
            return s, found.token, True
        s, token = self.create(req)
        self.idempotency.remember(key, body, s.id, token, self.now())
        return s, token, False

    def _challenge_for(self, req: CreateSession) -> dict[str, Any]:
        if req.challenge_id and req.challenge_text:
            raise IBError("invalid_request",
                          "Give either challenge_id or challenge_text, not both.",
                          param="challenge_id")
        if req.challenge_id:
            ch = self.challenges.get(req.challenge_id) if self.challenges else None
            if ch is None:
                raise IBError("invalid_request",
                              f"There is no challenge with id '{req.challenge_id}'.",
                              param="challenge_id")
            public = ch.public()
            return {k: public.get(k) for k in
                    ("id", "title", "difficulty", "category", "statement", "starter_code",
                     "visible_tests")}
        if not (req.challenge_text or "").strip():
            raise IBError("invalid_request",
                          "Give the challenge: challenge_id from the library or challenge_text.",
                          param="challenge_text")
        text = req.challenge_text.strip()
        title = (req.challenge_title or "").strip() or "Custom challenge"
        return {"id": None, "title": title, "difficulty": None, "category": "custom",
                "statement": text, "starter_code": ""}

    def act(self, session_id: str, action: str, actor: str = "interviewer") -> Session:
        s = self.get(session_id)
        if action in ("lock", "unlock"):
            s.set_locked(action == "lock")
            self.emit(s, f"session.{action}ed", actor, {"locked": s.locked})
            if action == "lock":
                self.cut_streams(s, "lock")
            self.save(s)
            return s
        self._transition(s, action, actor)
        return s

    def _transition(self, s: Session, action: str, actor: str, payload: dict | None = None) -> None:
        now = self.now()
        s.apply(action, now)
        past = {"start": "started", "pause": "paused", "resume": "resumed", "end": "ended",
                "expire": "expired", "submit": "submitted"}[action]
        # Each lifecycle event says where it led and what the clock read, so replays
        # and exports need no copy of the rules.
        self.emit(s, f"session.{past}", actor, {**(payload or {}), "status": s.status,
                                                "reason": s.end_reason if s.ended else None,
                                                "time_used_seconds": _reading(s, now)})
        if action in CUT_REASONS:
            self.cut_streams(s, action)
        self.save(s)
        if s.ended:
            self.schedule_grading(s)

    # ---- grading -----------------------------------------------------------------
    def schedule_grading(self, s: Session) -> None:
        """Once the session has ended, in the background: capture the notebook from the
        candidate's workspace (on JupyterHub), then grade the final notebook."""
        if self.grader is None and self.workspaces is None:
            return
        self.background(self._after_end(s.id))

    def background(self, coro) -> asyncio.Task:
        """Run `coro` as background work that close() cancels and waits for."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _after_end(self, session_id: str) -> None:
        """A workspace that was opened hands in its notebook at the end (hand_in): wait for
        it, at most `hand_in_grace_seconds`; then, on JupyterHub, capture the notebook and
        stop the server (workspaces.py); then grade what the service holds."""
        s = self.get(session_id)
        self._conversations.pop(s.id, None)  # no more turns to count
        if s.workspace_opened and s.handed_in is None:
            try:
                await asyncio.wait_for(self._handed_in[s.id].wait(),
                                       self.config.hand_in_grace_seconds)
            except asyncio.TimeoutError:
                log.info("session %s: no notebook handed in within %.0f s of the end", s.id,
                         self.config.hand_in_grace_seconds)
        if self.workspaces is not None:
            await self.workspaces.close(s)
        if self.grader is not None:
            await self.grade(session_id)

    async def grade(self, session_id: str) -> dict[str, Any] | None:
        s = self.get(session_id)
        record = await self.record(session_id)
        challenge = self.challenges.get(s.challenge.get("id") or "") if self.challenges else None
        reason = None
        if challenge is None:
            reason = "the challenge has no tests (custom text)"
        elif record.final_notebook is None:
            reason = "no notebook was submitted, handed in or saved"
        if reason:
            self.emit(s, "grade.skipped", "system", {"reason": reason})
            return None
        try:
            result = await self.grader(record.final_notebook, challenge)
        except SandboxUnavailable as e:  # never grade unisolated: say why instead
            log.warning("grading %s refused: %s", session_id, e)
            self.emit(s, "grade.skipped", "system",
                      {"reason": f"graded code cannot be isolated here: {e}"})
            return None
        except Exception as e:  # a grader failure must not take the service down
            log.exception("grading %s failed", session_id)
            result = {"score": 0.0, "passed": 0, "total": 0, "tests": [],
                      "error": f"The grader failed: {type(e).__name__}."}
        s.grade = result
        self.emit(s, "grade.completed", "system", result)
        self.save(s)
        return result

    def extend_time(self, session_id: str, seconds: int, actor: str = "interviewer") -> Session:
        s = self.get(session_id)
        now = self.now()
        revived = s.extend_time(seconds, now)
        self.emit(s, "time.extended", actor, {"seconds": seconds, "reopened": revived,
                                              "time_used_seconds": _reading(s, now)})
        self.check_warnings(s)
        self.save(s)
        return s

    def extend_tokens(self, session_id: str, tokens_: int, actor: str = "interviewer") -> Session:
        s = self.get(session_id)
        s.extend_tokens(tokens_)
        self.gate(s).changed()  # requests waiting for tokens may fit now
        self.emit(s, "tokens.extended", actor, {"tokens": tokens_})
        self.check_warnings(s)
        self.save(s)
        return s

    def rotate_token(self, session_id: str, actor: str = "interviewer") -> str:
        s = self.get(session_id)
        self._by_token.pop(s.token_hash, None)
        token = new_token()
        s.token_hash = hash_token(token)
        self._by_token[s.token_hash] = s.id
        self.emit(s, "session.token_rotated", actor)
        self.save(s)
        return token

    # ---- challenge library -------------------------------------------------------
    def add_challenge(self, fields: dict[str, Any] | None, source: str | None) -> Any:
        """Add an interviewer-made challenge (fields, or the text of a challenge file)."""
        from ..api.challenges import (
            ChallengeError,
            challenge_from_fields,
            dump_challenge,
            parse_challenge,
        )

        if self.challenges is None:
            raise IBError("invalid_request", "This service has no challenge library.")
        try:
            ch = (parse_challenge(source, "the submitted challenge") if source is not None
                  else challenge_from_fields(fields or {}, "the submitted challenge"))
            self.challenges.add(ch, f"custom:{ch.id}")
        except ChallengeError as e:
            raise IBError("invalid_request", f"The challenge cannot be used: {e.problem.rstrip('.')}.") from e
        self.store.save_challenge(ch.id, dump_challenge(ch), self.now())
        return ch

    def _add_challenge_source(self, source: str, name: str) -> None:
        from ..api.challenges import ChallengeError, parse_challenge

        try:
            self.challenges.add(parse_challenge(source, name), name, replace=True)
        except ChallengeError as e:
            log.warning("stored challenge %s not loaded: %s", name, e.problem)

    # ---- candidate side ----------------------------------------------------------
    def gate(self, s: Session) -> Gate:
        """The session's queue in front of its budget and its share of provider calls."""
        gate = self._gates.get(s.id)
        if gate is None:
            gate = self._gates[s.id] = Gate(s.ledger, self.config.max_provider_calls_per_session)
        return gate

    def conversation(self, s: Session) -> ConversationCache:
        """The session's conversation as last sent, with each message's tokens and JSON
        (each turn counts and encodes only its new messages); dropped when it ends."""
        cache = self._conversations.get(s.id)
        if cache is None:
            cache = self._conversations[s.id] = ConversationCache(s.model)
        return cache

    async def replies(self, s: Session) -> chat_log.Replies:
        """The replies this session was given (read from the file once, then kept)."""
        if s.id not in self._replies and s.message_count == 0:
            # nothing said yet: no read on a new session's first turn
            self._replies[s.id] = chat_log.Replies([])
        if s.id not in self._replies:
            rows = await self.store.run(self.store.messages, s.id)
            self._replies.setdefault(s.id, chat_log.Replies(
                [m["content"].strip() for m in rows if m["role"] == "assistant"]))
        return self._replies[s.id]

    def remember_reply(self, s: Session, text: str) -> None:
        if s.id in self._replies:
            self._replies[s.id].add(text.strip())

    def candidate_seen(self, s: Session) -> None:
        """A candidate action (asking the AI, opening the workspace) counts as activity and
        starts the clock if it has not started. Reading the session, the conversation or
        the feed does neither: a workspace reads them before anyone is looking."""
        s.last_activity_at = self.now()
        if s.status == "created":
            self._transition(s, "start", "candidate")

    def workspace_opened(self, s: Session) -> None:
        """The candidate opened the workspace in a browser: the clock starts (if the
        interviewer's Start or a first AI request has not started it), and from now on the
        end waits for the workspace to hand in the notebook."""
        if s.ended:
            return  # a reopened workspace after the end: nothing starts, nothing to wait for
        s.workspace_opened = True
        self.emit(s, "workspace.opened", "candidate")
        self.candidate_seen(s)
        self.save(s)

    def hand_in(self, s: Session, notebook: dict[str, Any], *, by: str,
                path: str | None = None) -> None:
        """The one way a final notebook arrives after the end, whoever brings it: the
        candidate's own server when it learns the session ended (`by="workspace"`), or the
        hub reading that server (`by="hub"`). The first one within `hand_in_grace_seconds`
        of the end is final; a submission already was."""
        now = self.now()
        if not s.ended:
            raise IBError("conflict", "The interview is still running: submit to hand in your "
                                      "notebook before the end.")
        if s.handed_in is not None:
            raise IBError("conflict", f"A final notebook was already handed in "
                                      f"({s.handed_in['by']}); this one was not kept.")
        late = now - (s.ended_at or now)
        if late > self.config.hand_in_grace_seconds:
            raise IBError("conflict", f"The interview ended {late:.0f} s ago, past the "
                                      f"{self.config.hand_in_grace_seconds:.0f} s in which a "
                                      "final notebook is taken; the last saved one stands.")
        cells = code_cells(notebook)
        s.handed_in = {"at": now, "by": by, "path": path, "code_cells": cells}
        self.emit(s, "notebook.handed_in", "system" if by == "hub" else "candidate",
                  {"by": by, "path": path, "notebook": notebook, "code_cells": cells,
                   "seconds_after_end": round(max(0.0, late), 3)})
        self.save(s)
        self._handed_in[s.id].set()

    def check_activity_room(self, s: Session, type_: str | None, size: int) -> None:
        """Refuse activity past the session's quota (on the request's headers too, with
        `type_` None and the announced size, so a flood's bodies are never read)."""
        usage = self.usage[s.id]
        refused = usage.refusal(self.quota, type_, size)
        if refused is not None:
            limit, err = refused
            if limit not in usage.reported:  # tell the interviewer once, not per refusal
                usage.reported.add(limit)
                self.emit(s, "quota.reached", "system", {"limit": limit, "message": err.message},
                          audience="interviewer")
            raise err

    def record_activity(self, s: Session, type_: str, payload: dict[str, Any]) -> dict:
        if s.ended:
            raise IBError("session_ended", "This session has ended; activity is no longer recorded.")
        try:
            catalogue.check_payload(type_, payload)
        except ValueError as e:
            raise IBError("invalid_request", f"The activity cannot be recorded: {e}.") from None
        encoded = json.dumps(payload)
        self.check_activity_room(s, type_, len(encoded))
        self.usage[s.id].add(type_, len(encoded))
        s.last_activity_at = self.now()
        if type_ == "activity.paste":
            s.flags["large_paste"] += 1
        event = self.emit(s, type_, "candidate", payload, encoded=encoded)
        self.save(s)
        return event

    def submit(self, s: Session, notebook: dict[str, Any], path: str | None = None) -> None:
        # Set before the transition, so the session it publishes says what was handed in.
        before = s.handed_in
        s.handed_in = {"at": self.now(), "by": "submit", "path": path,
                       "code_cells": code_cells(notebook)}
        try:
            self._transition(s, "submit", "candidate", {"notebook": notebook})
        except IBError:
            s.handed_in = before  # not submitted (it had ended already): nothing changes
            raise
        self._handed_in[s.id].set()

    async def messages(self, session_id: str) -> list[Message]:
        return [message_view(m) for m in await self.store.run(self.store.messages, session_id)]

    async def events(self, session_id: str, types: list[str] | None = None) -> list[Event]:
        """Oldest first; `types` may end in * to match a prefix."""
        return [event_view(e) for e in await self.store.run(self.store.events, session_id, types)]

    async def event(self, session_id: str, event_id: str) -> Event:
        """One event with its whole payload (the feed refers to big ones by address)."""
        self.get(session_id)
        row = (await self.store.run(self.store.event, session_id, int(event_id))
               if event_id.isdigit() and len(event_id) < 19 else None)
        if row is None:
            raise IBError("not_found", f"Session {session_id} has no event {event_id}.")
        return event_view(row)

    @property
    def search_index(self) -> str:
        """History search's state for /health: "ready" (the index answers), "filling"
        (a scan answers until the fill from the file is done) or "scan" (it failed)."""
        if self.words.ready:
            return "ready"
        return "filling" if self._filling is not None and self._filling.is_alive() else "scan"

    async def conversation_matches(self, text: str) -> set[str]:
        """Sessions whose conversation has every word of `text` as the start of a word
        (word_index.py); a text without a word (punctuation, other scripts) as a substring."""
        terms = sorted(words(text))
        if not terms:
            return await self.store.run(self.store.search_messages, text)
        if self.words.ready:
            return self.words.match(terms)
        return await self.store.run(self.store.search_words, terms)

    async def record(self, session_id: str) -> Record:
        """Everything about one session, for analytics and exports (no token hash)."""
        s = self.get(session_id)
        messages = await self.store.run(self.store.messages, session_id)
        events = await self.store.run(self.store.events, session_id, None)
        final = catalogue.final_notebook(events)
        challenge = s.challenge
        if self.challenges is not None and challenge.get("id"):
            ch = self.challenges.get(challenge["id"])
            challenge = ch.public() if ch is not None else challenge
        return Record(session=self.view(s), messages=[message_view(m) for m in messages],
                      events=[event_view(e) for e in events], final_notebook=final,
                      grade=s.grade, challenge=challenge)

    def refuse(self, s: Session, err: IBError) -> IBError:
        """Log a refusal, then hand the error back for raising. Past the first few in a
        minute, refusals are only counted (a `refusals.counted` event sums them up)."""
        now = self.now()
        s.flags["refusals"] += 1
        ended = self.refusals.ended(s.id, now)
        if ended:
            self._summarise_refusals([(s.id, ended)])
        if self.refusals.record(s.id, err.code, now):
            self.emit(s, "refusal", "system", {"code": err.code, "message": err.message})
            self.save(s)
        return err

    def _summarise_refusals(self, summaries: list[tuple[str, dict]]) -> None:
        for sid, summary in summaries:
            s = self.sessions.get(sid)
            if s is not None:
                self.emit(s, "refusals.counted", "system", {**summary, "since": iso(summary["since"])})
                self.save(s)

    def check_warnings(self, s: Session) -> None:
        now = self.now()
        for kind, threshold in s.due_warnings(now, self.config.warning_thresholds):
            left = (round(s.time_left(now)) if kind == "time" else s.ledger.settled_left)
            s.warnings.append({"kind": kind, "threshold": threshold, "at": now})
            s.flags["warnings"] += 1
            self.emit(s, "warning", "system", {"kind": kind, "threshold": threshold, "left": left})

    # ---- streams -----------------------------------------------------------------
    def cut_streams(self, s: Session, action: str) -> None:
        for ev in list(self.streams.get(s.id, ())):
            ev.reason = CUT_REASONS[action]  # type: ignore[attr-defined]
            ev.set()


def _created_at(s: Session) -> float:
    return s.created_at


def _reading(s: Session, now: float) -> float:
    """The session's clock as its events carry it (the view's time_used_seconds)."""
    return round(s.time_used(now), 3)
def code_cells(notebook: dict[str, Any]) -> int:
    """Code cells with something in them: what the candidate sees was handed in."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    return sum(1 for c in cells or () if isinstance(c, dict) and c.get("cell_type") == "code"
               and "".join(c.get("source") or "").strip())


def message_view(m: dict[str, Any]) -> Message:
    return Message(**{**m, "created_at": iso(m["created_at"]),
                      "finished_at": iso(m.get("finished_at"))})


def event_view(e: dict[str, Any]) -> Event:
    return Event(**{k: v for k, v in e.items() if k not in ("payload_bytes", "at")},
                 at=iso(e["at"]))


FEED_PAYLOAD_BYTES = 4096  # larger event payloads reach the feed as a reference


def feed_event(e: dict[str, Any]) -> Event | FeedEvent:
    """An event as live readers get it: a payload over FEED_PAYLOAD_BYTES is replaced by
    `payload_url` (where an interviewer reads it) and its size."""
    size = e.get("payload_bytes", 0)
    if size <= FEED_PAYLOAD_BYTES:
        return event_view(e)
    return FeedEvent(**{**e, "at": iso(e["at"]), "payload": {}, "payload_bytes": size,
                        "payload_url": f"/ib/api/sessions/{e['session_id']}/events/{e['id']}"})
