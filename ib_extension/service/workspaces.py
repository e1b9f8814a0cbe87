"""Candidates' workspaces on JupyterHub, as the service sees them: one per session.

- a one-time link per session (`issue_link`): only its hash is kept; the first browser
  to open it claims it (`redeem`, called by the hub's link handler), others are refused
  with a sentence; the interviewer can issue a new one, which frees the claim;
- the spawn (`prepare_spawn`, called by the hub before it starts the server): a fresh
  session token and the service's URL, for the server's environment;
- the end (`close`): capture the notebook through the hub, then stop the server;
- removal: `retention_seconds` after the close, the hub user is deleted (and with it,
  when the hub runs as root, the system user and its home).

The hub owns users, logins and servers; this module only asks it, through HubClient.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from ..api import hub as contract
from ..api.environment import SERVICE_URL_ENV, SESSION_TOKEN_ENV
from ..api.errors import IBError
from .capture import Captured, capture_notebook
from .hubclient import HubClient, HubError
from .sessions import Session, hash_token

log = logging.getLogger("ib_extension.service.workspaces")
# How long the catch-up waits before trying a failed close or removal again.
RETRY_SECONDS = 30.0


@dataclass
class Workspace:
    session_id: str
    hub_user: str
    link_hash: str | None
    issued_at: float
    browser_hash: str | None = None  # the browser holding the current link; None: unclaimed
    claimed_at: float | None = None  # first opened (the hub user exists since)
    closed_at: float | None = None
    removed_at: float | None = None


@dataclass(frozen=True)
class Settings:
    notebook: str
    capture_grace_seconds: float
    retention_seconds: float


class Workspaces:
    def __init__(self, service: Any, hub: HubClient, settings: Settings):
        self.service = service
        self.hub = hub
        self.settings = settings
        self.by_session: dict[str, Workspace] = {}
        self._by_link: dict[str, str] = {}  # link hash -> session id
        self._closing: dict[str, Any] = {}  # session id -> its close task
        self._removing: set[str] = set()
        self._next_try: dict[str, float] = {}  # session id -> earliest catch-up attempt

    # ---- state -----------------------------------------------------------------------
    def load(self) -> None:
        store = self.service.store
        for row in store.submit(store.load_workspaces).result():
            w = Workspace(**row)
            self.by_session[w.session_id] = w
            if w.link_hash:
                self._by_link[w.link_hash] = w.session_id

    def _save(self, w: Workspace) -> None:
        self.service.store.save_workspace(asdict(w))

    # ---- links -----------------------------------------------------------------------
    def issue_link(self, s: Session) -> str:
        """A new one-time link code for the session; an earlier one stops working."""
        if s.ended:
            raise IBError("conflict", f"Session {s.id} has ended; its candidate link cannot "
                                      "be issued again.")
        code = contract.LINK_PREFIX + secrets.token_urlsafe(24)
        now = self.service.now()
        w = self.by_session.get(s.id)
        reissued = w is not None
        if w is None:
            w = Workspace(s.id, contract.hub_user_for(s.id), None, now)
            self.by_session[s.id] = w
        self._by_link.pop(w.link_hash or "", None)
        w.link_hash, w.issued_at, w.browser_hash = hash_token(code), now, None
        self._by_link[w.link_hash] = s.id
        self._save(w)
        self.service.emit(s, "link.issued", "interviewer", {"reissued": reissued,
                                                            "hub_user": w.hub_user},
                          audience="interviewer")
        return code

    def candidate_url(self, code: str, origin: str) -> str:
        """The link as the candidate opens it: on the hub's public URL when the hub knows
        it, else on the origin the interviewer reached the service at."""
        env = self.hub.env
        base = env.public_hub_url or (origin.rstrip("/") + env.hub_prefix)
        return f"{base.rstrip('/')}/{contract.LINK_PATH}/{code}"

    def redeem(self, code: str, browser: str) -> dict[str, Any]:
        """A browser opened a link: whose workspace it opens, or a refusal with a sentence."""
        sid = self._by_link.get(hash_token(code))
        if sid is None:
            raise IBError("not_found", "This interview link is not valid. It may have been "
                                       "replaced by a newer one: ask your interviewer for the "
                                       "current link.")
        s, w = self.service.get(sid), self.by_session[sid]
        if s.ended:
            raise IBError("session_ended", "This interview is over. Thank you for taking part; "
                                           "your interviewer has your work.")
        fresh = w.browser_hash is None
        if fresh:
            w.browser_hash = hash_token(browser)
            w.claimed_at = w.claimed_at or self.service.now()
            self._save(w)
            self.service.emit(s, "link.opened", "candidate", audience="interviewer")
        elif not secrets.compare_digest(w.browser_hash or "", hash_token(browser)):
            self.service.emit(s, "link.refused", "system", {"reason": "open in another browser"},
                              audience="interviewer")
            raise IBError("link_in_use", "This interview is already open in another browser. "
                                         "Please continue there; if you cannot, ask your "
                                         "interviewer to send you a new link.")
        return {"session_id": sid, "hub_user": w.hub_user, "first_open": fresh}

    # ---- the candidate's server ------------------------------------------------------------
    def prepare_spawn(self, hub_user: str) -> dict[str, Any]:
        """What the hub puts in the environment of the server it is about to start: the
        service's URL and a fresh session token (the one of any earlier server dies)."""
        sid = contract.session_for(hub_user)
        if sid is None or sid not in self.by_session:
            raise IBError("not_found", f"The hub user {hub_user!r} belongs to no interview.")
        s = self.service.get(sid)
        if s.ended:
            raise IBError("session_ended", "This interview is over; its workspace does not "
                                           "start again.")
        token = self.service.rotate_token(sid, actor="system")
        return {"session_id": sid, "environment": {
            SERVICE_URL_ENV: self.hub.env.url_via(self.hub.proxy_url), SESSION_TOKEN_ENV: token}}

    # ---- the end ---------------------------------------------------------------------
    async def close(self, s: Session) -> None:
        """Capture the notebook through the hub, then stop the server (once at a time)."""
        task = self._closing.get(s.id)
        if task is None:
            task = self.service.background(self._close(s))
            self._closing[s.id] = task
            task.add_done_callback(lambda _: self._closing.pop(s.id, None))
        await task

    async def _close(self, s: Session) -> None:
        w = self.by_session.get(s.id)
        if w is None or w.removed_at is not None:
            return
        path = self.settings.notebook
        if w.claimed_at is None:  # never opened: no hub user, no server
            captured, stopped = Captured(None, path, problem="the link was never opened"), True
        else:
            try:
                captured = await capture_notebook(
                    self.hub, w.hub_user, path, ended_at=s.ended_at or self.service.now(),
                    grace_seconds=self.settings.capture_grace_seconds)
            except (HubError, httpx.HTTPError) as e:  # grading must still happen
                captured = Captured(None, path, problem=f"the hub could not be asked: {e}")
            try:
                await self.hub.stop_server(w.hub_user)
                stopped = True
            except (HubError, httpx.HTTPError) as e:  # the tick tries again
                log.warning("session %s: the hub did not stop %s: %s", s.id, w.hub_user, e)
                stopped = False
        if captured.problem:
            log.warning("session %s: notebook not captured: %s", s.id, captured.problem)
        self.service.emit(s, "workspace.closed", "system",
                          {**captured.payload(), "server_stopped": stopped},
                          audience="interviewer")
        if stopped:
            w.closed_at = self.service.now()
            self._save(w)

    def tick(self, now: float) -> None:
        """Catch up: close workspaces of sessions that ended unseen (a restart), and remove
        the ones whose retention is over."""
        for w in self.by_session.values():
            s = self.service.sessions.get(w.session_id)
            if s is None or not s.ended or w.removed_at is not None \
                    or s.id in self._closing or s.id in self._removing \
                    or now < self._next_try.get(s.id, 0.0):
                continue
            if w.closed_at is None or w.closed_at < (s.ended_at or 0):
                self._next_try[s.id] = now + RETRY_SECONDS
                self.service.background(self.close(s))
            elif now - w.closed_at >= self.settings.retention_seconds:
                self._next_try[s.id] = now + RETRY_SECONDS
                self._removing.add(s.id)
                self.service.background(self._remove(s, w))

    async def _remove(self, s: Session, w: Workspace) -> None:
        try:
            if w.claimed_at is None or await self.hub.delete_user(w.hub_user):
                w.removed_at = self.service.now()
                self._save(w)
                self.service.emit(s, "workspace.removed", "system", {"hub_user": w.hub_user},
                                  audience="interviewer")
        except (HubError, httpx.HTTPError) as e:
            log.warning("session %s: removing %s failed (will retry): %s", s.id, w.hub_user, e)
        finally:
            self._removing.discard(s.id)
