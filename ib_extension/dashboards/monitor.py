"""The monitor: every session at a glance, one session live (conversation, meters,
events, the candidate's code as it is written) and its controls — all kept current by
the change feed."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx
import ipywidgets as w

from ..api.client import AsyncIBClient, IBClientError
from . import fmt
from .controls import Controls
from .handover import Handover
from .live import FeedFollower, every, spawn, strict
from .livecode import LiveCode
from .timeline import Timeline
from .widgets import Conversation

FILTERS = [("All", ""), ("Active", "active"), ("Paused", "paused"), ("Not started", "created"),
           ("Completed", "completed"), ("Expired", "expired")]
COLUMNS = ("Session", "Challenge", "Status", "Time", "Tokens left", "Msgs", "Last activity",
           "Flags")


def row_cells(s: dict) -> str:
    created = fmt.parse_time(s.get("created_at"))
    return (f'<div class="ib-grid">'
            f'<span class="ib-cell-id" title="created '
            f'{created.strftime("%Y-%m-%d %H:%M") if created else ""}">'
            f'<code>{fmt.esc(s["id"])}</code></span>'
            f'<span class="ib-cell-challenge" title="{fmt.esc(fmt.challenge_title(s))}">'
            f'{fmt.esc(fmt.challenge_title(s))}</span>'
            f'<span>{fmt.status_badge(s)}</span>'
            f'<span>{fmt.time_bar(s)}</span>'
            f'<span>{fmt.token_bar(s)}</span>'
            f'<span class="ib-num">{int(s.get("message_count") or 0)}</span>'
            f'<span class="ib-muted">{fmt.ago(s.get("last_activity_at"))}</span>'
            f'<span>{fmt.flags(s)}</span></div>')


def sort_key(s: dict) -> tuple:
    """Newest first, and never moved by what happens to a session: the row under the
    interviewer's pointer stays the row they meant."""
    return (s.get("created_at") or "", s["id"])


class Overview:
    """The table of sessions; rows are kept and updated in place, not redrawn."""

    def __init__(self, on_select):
        self.on_select = on_select
        self.sessions: dict[str, dict] = {}
        self.rows: dict[str, tuple[w.HBox, w.Button, w.HTML]] = {}
        self.selected: str | None = None
        self.status = w.ToggleButtons(options=FILTERS, value="", description="Show",
                                      style={"button_width": "auto",
                                             "description_width": "40px"})
        self.status.add_class("ib-filter")
        self.status.observe(lambda _: self.arrange(), "value")
        self.search = w.Text(placeholder="candidate, challenge or session id",
                             description="Find", layout=w.Layout(width="320px"),
                             style={"description_width": "40px"})
        self.search.observe(lambda _: self.arrange(), "value")
        self.counts = w.HTML()
        self.counts.add_class("ib-counts")
        head = w.HTML('<div class="ib-grid ib-grid-head">' +
                      "".join(f"<span>{c}</span>" for c in COLUMNS) + "</div>")
        name_head = w.HTML('<span class="ib-head-name">Candidate</span>')
        self.header = w.HBox([name_head, head])
        self.header.add_class("ib-row-head")
        self.body = w.VBox()
        self.body.add_class("ib-rows")
        self.empty = w.HTML()
        self.widget = w.VBox([w.HBox([self.status, self.search, self.counts]),
                              self.header, self.body, self.empty])
        self.widget.add_class("ib-overview")

    def load(self, sessions: list[dict]) -> None:
        self.sessions = {s["id"]: s for s in sessions}
        for sid in list(self.rows):
            if sid not in self.sessions:
                del self.rows[sid]
        for s in sessions:
            self.update(s, arrange=False)
        self.arrange()

    def update(self, s: dict, *, arrange: bool = True) -> None:
        old = self.sessions.get(s["id"])
        self.sessions[s["id"]] = s
        if s["id"] not in self.rows:
            name = w.Button(description=s.get("candidate_name") or s["id"],
                            tooltip=f"Watch {s.get('candidate_name') or ''} ({s['id']}) live")
            name.add_class(f"ib-name-{s['id']}")
            name.add_class("ib-name")
            name.on_click(lambda _, sid=s["id"]: self.on_select(sid))
            cells = w.HTML()
            row = w.HBox([name, cells])
            row.add_class("ib-row")
            self.rows[s["id"]] = (row, name, cells)
        _, _, cells = self.rows[s["id"]]
        cells.value = row_cells(s)
        if not arrange:
            return
        if old is None or (self.status.value and old.get("status") != s.get("status")):
            self.arrange()  # a new row, or one that enters or leaves the filtered list
        else:
            self.count()

    def tick(self) -> None:
        """Redraw what changes with time alone: clocks of running sessions, 'x s ago'."""
        for sid, s in self.sessions.items():
            self.rows[sid][2].value = row_cells(s)

    def visible(self) -> list[dict]:
        wanted, text = self.status.value, self.search.value.strip().lower()
        return sorted((s for s in self.sessions.values()
                       if (not wanted or s.get("status") == wanted)
                       and (not text or text in (s.get("candidate_name") or "").lower()
                            or text in fmt.challenge_title(s).lower()
                            or text in s["id"].lower()
                            or text in (s.get("candidate_email") or "").lower())),
                      key=sort_key, reverse=True)

    def arrange(self) -> None:
        shown = [self.rows[s["id"]][0] for s in self.visible()]
        if list(self.body.children) != shown:
            self.body.children = shown
        if not self.sessions:
            self.empty.value = ('<div class="ib-empty">No sessions yet. Create one on the '
                                '<a href="create.ipynb">Create</a> page.</div>')
        elif not shown:
            self.empty.value = '<div class="ib-empty">No session matches these filters.</div>'
        else:
            self.empty.value = ""
        self.count()

    def count(self) -> None:
        by = {}
        for s in self.sessions.values():
            by[s.get("status")] = by.get(s.get("status"), 0) + 1
        parts = [f"{len(self.sessions)} session{'s' * (len(self.sessions) != 1)}"]
        parts += [f"{by[k]} {k}" for k in ("active", "paused", "created") if by.get(k)]
        self.counts.value = f'<span class="ib-muted">{" · ".join(parts)}</span>'

    def select(self, sid: str | None) -> None:
        for rid, (row, _, _) in self.rows.items():
            if rid == sid:
                row.add_class("ib-row-selected")
            else:
                row.remove_class("ib-row-selected")
        self.selected = sid


class SessionPanel:
    """The selected session: who and what, meters, controls, hand-over, conversation,
    events, and the candidate's code live."""

    def __init__(self, client, on_session):
        self.client = client
        self.session: dict | None = None
        self.title = w.HTML()
        self.title.add_class("ib-panel-title")
        self.meters = w.HTML()
        self.meters.add_class("ib-meters")
        self.controls = Controls(client, on_session)
        self.handover = Handover(client)
        self.conversation = Conversation(empty_text="No messages yet: the candidate has not "
                                                    "asked the AI anything.")
        self.timeline = Timeline()
        self.code = LiveCode(client)
        convo = w.VBox([w.HTML('<h3 class="ib-h3">Conversation</h3>'), self.conversation])
        convo.add_class("ib-col-convo")
        events = w.VBox([w.HTML('<h3 class="ib-h3">Events</h3>'), self.timeline.widget])
        events.add_class("ib-col-events")
        columns = w.HBox([convo, events])
        columns.add_class("ib-columns")
        self.widget = w.VBox([self.title, self.meters, self.controls.widget,
                              self.handover.widget, columns, self.code.widget],
                             layout=w.Layout(display="none"))
        self.widget.add_class("ib-panel")

    def show(self, session: dict, messages: list[dict], events: list[dict]) -> None:
        self.conversation.show(session["id"], messages)
        self.timeline.show(events)
        self.code.show(session["id"], events)
        self.update(session)
        self.widget.layout.display = "flex"

    def update(self, s: dict) -> None:
        self.session = s
        ch = s.get("challenge") or {}
        email = f' &lt;{fmt.esc(s["candidate_email"])}&gt;' if s.get("candidate_email") else ""
        self.title.value = (
            f'<div class="ib-panel-head"><h2 class="ib-panel-name-line"><span '
            f'class="ib-panel-name">{fmt.esc(s.get("candidate_name"))}</span></h2>'
            f'<div>{email} {fmt.status_badge(s)} <code class="ib-panel-id">'
            f'{fmt.esc(s["id"])}</code></div>'
            f'<div class="ib-muted">{fmt.esc(fmt.challenge_title(s))}'
            f'{" · " + fmt.esc(ch.get("difficulty")) if ch.get("difficulty") else ""}'
            f' · model {fmt.esc(s.get("model"))} · policy {fmt.esc(s.get("assist_policy"))}'
            f' · <a class="ib-link" href="analytics.ipynb?session={quote(s["id"])}">analytics'
            f'</a> · <a class="ib-link" href="#ib-live-code">code</a></div></div>')
        self.draw_meters()
        self.controls.set_session(s)
        self.handover.set_session(s)

    def draw_meters(self) -> None:
        s = self.session
        if s is None:
            return
        self.meters.value = (
            '<div class="ib-meter"><div class="ib-meter-label">Time</div>'
            f'{fmt.time_bar(s)}<div class="ib-meter-note">'
            f'{fmt.clock(fmt.time_used(s))} used · paused '
            f'{fmt.clock(s.get("time_paused_seconds") or 0)} · limit '
            f'{fmt.clock(s.get("time_limit_seconds"))}</div></div>'
            '<div class="ib-meter"><div class="ib-meter-label">Tokens</div>'
            f'{fmt.token_bar(s)}<div class="ib-meter-note">'
            f'<span class="ib-tokens-used">{int(s.get("tokens_used") or 0):,}</span> billed: '
            f'{int(s.get("tokens_prompt") or 0):,} prompt · '
            f'{int(s.get("tokens_completion") or 0):,} completion</div></div>'
            '<div class="ib-meter"><div class="ib-meter-label">Flags</div>'
            f'{fmt.flags(s)}</div>')

    def add_event(self, event: dict) -> None:
        self.timeline.add(event)
        self.code.add(event)


class Monitor:
    """Build with a client (default: the service this kernel was started by), then
    `await monitor.start()` and display `monitor.widget`."""

    def __init__(self, client=None, *, tick_seconds: float = 1.0):
        self.client = client or AsyncIBClient()
        self.tick_seconds = tick_seconds
        self.overview = Overview(self.select)
        self.panel = SessionPanel(self.client, self.session_changed)
        self.connection = w.HTML(layout=w.Layout(display="none"))
        self.connection.add_class("ib-connection")
        self.hint = w.HTML('<div class="ib-hint">Select a candidate to watch their session '
                           'live.</div>')
        self.follower = FeedFollower(self.client, self.apply, self.reload, self.set_connection)
        self.selected: str | None = None
        self._ticker: asyncio.Task | None = None
        self.widget = w.VBox([self.connection, self.overview.widget, self.hint, self.panel.widget])
        self.widget.add_class("ib-dash")
        self.widget.add_class("ib-monitor")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    async def start(self) -> None:
        """First read, then follow the feed on this kernel's loop."""
        try:
            await self.follower.mark()
            await self.reload()
        except (IBClientError, httpx.HTTPError, ValueError) as e:
            self.set_connection(f"Cannot reach the ib service: {_reason(e)}")
            if strict():
                raise
            return
        self.follower.start()
        self._ticker = spawn(every(self.tick_seconds, self.tick))
        try:  # on JupyterHub, the controls issue a new candidate link instead of a token
            links = bool((await self.client.models()).get("candidate_links"))
        except (IBClientError, httpx.HTTPError, ValueError):
            return
        self.panel.controls.links = links
        # A new token would cut off the running workspace, which the hub started with the
        # old one; a new link makes the hub start it again with a fresh token.
        self.panel.handover.widget.layout.display = "none" if links else ""

    def stop(self) -> None:
        self.follower.stop()
        if self._ticker is not None:
            self._ticker.cancel()

    async def reload(self) -> None:
        page = await self.client.list_sessions(limit=500)
        self.overview.load(page["sessions"])
        if self.selected:
            await self.load_selected(self.selected)

    def set_connection(self, text: str) -> None:
        self.connection.value = fmt.notice("error", text) if text else ""
        self.connection.layout.display = "" if text else "none"

    # -- selection ---------------------------------------------------------------------
    def select(self, sid: str) -> None:
        self.selected = sid
        self.overview.select(sid)
        spawn(self.load_selected(sid))

    async def load_selected(self, sid: str) -> None:
        try:
            session = await self.client.session(sid)
            messages = (await self.client.messages(sid))["messages"]
            events = (await self.client.events(sid))["events"]
        except IBClientError as e:
            self.panel.controls._say("error", e.message)
            return
        if sid != self.selected:  # another row was clicked meanwhile
            return
        if self.panel.session and self.panel.session["id"] == sid:
            # Keep what the feed delivered while we were reading.
            self.panel.conversation.merge(messages)
            for e in events:
                self.panel.timeline.events.setdefault(e["id"], e)
                self.panel.code.keep(e)
            self.panel.timeline.draw()
            self.panel.code.draw()
            self.panel.update(session)
        else:
            self.panel.show(session, messages, events)
        self.hint.layout.display = "none"

    # -- live updates ------------------------------------------------------------------
    def apply(self, items: list[dict]) -> None:
        for item in items:
            sid, kind, data = item["session_id"], item["kind"], item["data"]
            if kind == "session":
                self.session_changed(data)
                continue
            if sid != self.selected or self.panel.session is None \
                    or self.panel.session["id"] != sid:
                continue
            if kind == "message":
                self.panel.conversation.upsert(data)
            elif kind == "delta":
                self.panel.conversation.delta(data["message_id"], data["text"])
            elif kind == "event":
                self.panel.add_event(data)

    def session_changed(self, session: dict) -> None:
        self.overview.update(session)
        if self.panel.session and self.panel.session["id"] == session["id"]:
            self.panel.update(session)

    def tick(self) -> None:
        self.overview.tick()
        self.panel.draw_meters()


def _reason(e: Exception) -> str:
    if isinstance(e, IBClientError):
        return e.message
    return str(e) or type(e).__name__
