"""The History and Replay dashboards (notebooks/history.ipynb, notebooks/replay.ipynb).

- `HistoryPage`: past sessions — full-text search, filters, a table paged by the service
  (`limit`/`offset`: one page is all the kernel ever holds), a Replay link per row and
  the reviewer's exports of each session, one click per file (with the challenge's
  answer key for interviewers, or without it to share).
- `ReplayPage`: one session's timeline (`replay.timeline`) stepped forwards and
  backwards with buttons, a slider and the keyboard (← → Home End); each step shows what
  happened and the state so far (tokens billed, time used, status).

Both read the service through its REST API on the dashboard kernel's own asyncio loop,
like the other pages in `dashboards/`, whose styling helpers (`fmt`) and look they
share. Every text a candidate, the AI or an interviewer wrote goes through `fmt.esc`:
HTML widgets set innerHTML.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

import httpx
import ipywidgets as w
from IPython.display import display

from ..api.client import AsyncIBClient, IBClientError
from ..api.models import score_text
from ..api.requests import SESSION_ID
from ..lean_start import without_unused_format_checks
from ..review.formats import FORMATS, file_name
from ..review.provenance import closes_fence, opens_fence
from ..review.replay import Step, Stepper, timeline
from . import fmt
from .code import diff_html
from .live import spawn, strict
from .widgets import Downloads, Keys

PAGE_SIZES = (25, 50, 100)
MIMES = {"ipynb": "application/x-ipynb+json", "md": "text/markdown", "json": "application/json",
         "html": "text/html", "csv": "text/csv"}
NEARBY = 4  # steps listed before and after the current one
RECENT = 50  # sessions offered by a replay page opened without one


# -- filters ----------------------------------------------------------------------------


@dataclass
class HistoryFilters:
    """What the interviewer asked for, as the query of `GET /ib/api/sessions`."""

    q: str = ""
    candidate: str = ""
    challenge_id: str = ""
    status: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    score: tuple[int, int] = (0, 100)  # percent; the full range also admits ungraded sessions

    def errors(self) -> list[str]:
        found = []
        if self.date_from and self.date_to and self.date_from > self.date_to:
            found.append("The 'from' date is after the 'to' date.")
        lo, hi = self.score
        if not 0 <= lo <= hi <= 100:
            found.append(f"The score range {lo}–{hi} % is not within 0–100 %.")
        return found

    def params(self) -> dict[str, str | float]:
        out: dict[str, str | float] = {}
        for key in ("q", "candidate", "challenge_id", "status"):
            value = getattr(self, key).strip()
            if value:
                out[key] = value
        if self.date_from:
            out["date_from"] = self.date_from.isoformat()
        if self.date_to:
            out["date_to"] = self.date_to.isoformat()
        if self.score != (0, 100):
            out["min_score"], out["max_score"] = self.score[0] / 100, self.score[1] / 100
        return out


async def search_sessions(client, filters: HistoryFilters, *, limit: int, offset: int) -> dict:
    """One page of sessions: the service filters and pages, the kernel holds one page."""
    return await client.list_sessions(**filters.params(), limit=limit, offset=offset)


async def library(client) -> list[dict]:
    """The challenge library (id, title), for the challenge filter; [] when the service
    has none."""
    try:
        found = await client.challenges()
    except IBClientError:
        return []
    return [{"id": c["id"], "title": c.get("title") or c["id"]} for c in found["challenges"]]


def replay_href(session_id: str) -> str:
    """The replay page of a session, relative to the page that links it (both are
    served from /voila/render/)."""
    return f"replay.ipynb?session_id={quote(session_id, safe='')}"


def requested_session(query_string: str | None = None) -> str | None:
    """`?session_id=ID` of the page's URL (Voilà hands the query string to the kernel)."""
    query = os.environ.get("QUERY_STRING", "") if query_string is None else query_string
    return (parse_qs(query).get("session_id") or [None])[0]


# -- HTML fragments (pure) ----------------------------------------------------------------

COLUMNS = ("Candidate", "Session", "Challenge", "Status", "Created", "Score", "Tokens",
           "Msgs", "")
NUMERIC = {"Score", "Tokens", "Msgs"}


def session_score(session: dict) -> str:
    return score_text(session.get("score"))


def row_html(s: dict) -> str:
    created = fmt.parse_time(s.get("created_at"))
    return (f'<div class="ibh-grid ibh-row-cells">'
            f'<span class="ibh-name" title="{fmt.esc(s["id"])}">'
            f'{fmt.esc(s.get("candidate_name") or s["id"])}</span>'
            f'<span><code>{fmt.esc(s["id"])}</code></span>'
            f'<span title="{fmt.esc(fmt.challenge_title(s))}">'
            f'{fmt.esc(fmt.challenge_title(s))}</span>'
            f'<span>{fmt.status_badge(s)}</span>'
            f'<span class="ib-muted">{created.strftime("%Y-%m-%d %H:%M") if created else "–"}</span>'
            f'<span class="ib-num">{session_score(s)}</span>'
            f'<span class="ib-num">{int(s.get("tokens_used") or 0):,}</span>'
            f'<span class="ib-num">{int(s.get("message_count") or 0)}</span>'
            f'<span><a class="ib-download ibh-replay" href="{fmt.esc(replay_href(s["id"]))}" '
            f'target="_blank" rel="noopener">Replay</a></span></div>')


def head_html() -> str:
    return ('<div class="ibh-grid ib-grid-head">'
            + "".join(f'<span{" class=ib-num" if c in NUMERIC else ""}>{fmt.esc(c)}</span>'
                      for c in COLUMNS) + "</div>")


def pager_text(offset: int, shown: int, total: int) -> str:
    if not total:
        return "no sessions"
    return f"{offset + 1:,}–{offset + shown:,} of {total:,}"


def message_html(text: str) -> str:
    """A message as inert HTML: prose as pre-wrapped text, fenced code as <pre>."""
    parts, buf, fence = [], [], None

    def flush(code: bool) -> None:
        if buf:
            css = "ibh-code" if code else "ibh-text"
            parts.append(f'<pre class="{css}">' if code else f'<div class="{css}">')
            parts.append(fmt.esc("\n".join(buf)))
            parts.append("</pre>" if code else "</div>")
            buf.clear()

    for line in text.splitlines():
        if fence is None and opens_fence(line):
            flush(False)
            fence = opens_fence(line)
        elif fence is not None and closes_fence(line, fence):
            flush(True)
            fence = None
        else:
            buf.append(line)
    flush(fence is not None)
    return "".join(parts) or '<div class="ib-muted">(empty)</div>'


def _when(step: Step) -> str:
    at = fmt.parse_time(step.at)
    return f'+{fmt.clock(step.t)} · {at.strftime("%H:%M:%S") if at else ""}'


def step_body(step: Step) -> str:
    d = step.detail
    if step.kind in ("question", "answer"):
        meta = ([f"{d['prompt_tokens']:,} prompt + {d['completion_tokens']:,} completion "
                 "tokens billed"] if d.get("tokens") else [])
        if d.get("latency_ms"):
            meta.append(f"{d['latency_ms'] / 1000:.1f} s")
        return (f'<div class="ibh-msg ibh-msg-{step.kind}">{message_html(d["content"])}</div>'
                f'<div class="ib-muted ibh-meta">{fmt.esc(" · ".join(meta))}</div>')
    if step.kind == "cell":
        bits = [f"{d['duration_ms']} ms" if d.get("duration_ms") is not None else "",
                f"cell {d['cell_id']}" if d.get("cell_id") else ""]
        if d.get("source") is None:
            code = (f'<div class="ib-muted">Source not sent ({d.get("chars") or "?"} '
                    f'characters; sha256 {fmt.esc(d.get("sha256"))}).</div>')
        else:
            code = f'<pre class="ibh-code">{fmt.esc(d["source"]) or "&nbsp;"}</pre>'
        return code + f'<div class="ib-muted ibh-meta">{fmt.esc(" · ".join(b for b in bits if b))}</div>'
    if step.kind in ("snapshot", "submit"):
        first = " (first snapshot: every code cell is new)" if d.get("first") else ""
        return (f'<div class="ibh-diff-summary">{fmt.esc(d["summary"])}{first}</div>'
                + diff_html(d.get("diff") or []))
    if step.kind == "copy":
        return (f'<div>{d.get("lines") or "?"} lines ({d.get("chars") or "?"} characters) '
                f'from reply <code>{fmt.esc(d.get("message_id"))}</code></div>')
    if step.kind == "paste":
        return (f'<div>The cell grew to {d.get("lines") or "?"} lines '
                f'({d.get("chars") or "?"} characters) between two runs'
                f'{" (cell " + fmt.esc(d["cell_id"]) + ")" if d.get("cell_id") else ""}.</div>')
    return ""


def step_html(step: Step, count: int) -> str:
    return (f'<div class="ibh-step ibh-kind-{step.kind}">'
            f'<div class="ibh-step-head"><span class="ibh-chip ibh-chip-{step.kind}">'
            f'{fmt.esc(step.kind)}</span>'
            f'<span class="ibh-step-title">{fmt.esc(step.title)}</span>'
            f'<span class="ib-muted ibh-step-when">{fmt.esc(_when(step))} · '
            f'{fmt.esc(step.actor)} · step {step.index + 1} of {count}</span></div>'
            f'<div class="ibh-step-body">{step_body(step)}</div></div>')


def state_html(step: Step, session: dict) -> str:
    budget = int(session.get("token_budget") or 0)
    limit = float(session.get("time_limit_seconds") or 0)
    status = fmt.status_badge({"status": step.status, "locked": step.locked})
    return fmt.kv_table([
        ("Time", fmt.esc(f"+{fmt.clock(step.t)}")),
        ("Time used", f'<span class="ibh-time-used">{fmt.clock(step.time_used)}</span> of '
                      f"{fmt.clock(limit)}"),
        ("Status", status),
        ("Tokens billed", f'<span class="ibh-tokens">{step.tokens:,}</span> of {budget:,}'),
        ("Messages", f'<span class="ibh-messages">{step.messages}</span>'),
    ])


def nearby_html(steps: list[Step], index: int) -> str:
    lo, hi = max(0, index - NEARBY), min(len(steps), index + NEARBY + 1)
    rows = []
    for s in steps[lo:hi]:
        current = " ibh-near-current" if s.index == index else ""
        rows.append(f'<div class="ibh-near{current}"><span class="ib-muted">+{fmt.clock(s.t)}'
                    f'</span><span class="ibh-chip ibh-chip-{s.kind}">{fmt.esc(s.kind)}</span>'
                    f'<span>{fmt.esc(s.title)}</span></div>')
    return "".join(rows)


# -- the pages ----------------------------------------------------------------------------


def _render(record: dict, fmt_name: str, key: dict | None) -> str:
    """review.export.render, its exporters imported on the page's first download (this
    kernel is ours: it goes without jsonschema's unused format checks, see lean_start)."""
    without_unused_format_checks()
    from ..review.export import render

    return render(record, fmt_name, key)


def _styles() -> w.HTML:
    style = w.HTML(f"<style>{CSS}</style>")
    style.layout.display = "none"  # the rules apply all the same; the box takes no room
    return style


def _message() -> w.HTML:
    """A line for notices; hidden (by CSS) while it is empty."""
    message = w.HTML()
    message.add_class("ibh-message")
    return message


def _button(label: str, tooltip: str, css: str, **kw) -> w.Button:
    b = w.Button(description=label, tooltip=tooltip, **kw)
    b.add_class(css)
    return b


class HistoryPage:
    def __init__(self, client=None, page_size: int = PAGE_SIZES[0]):
        self.client = client or AsyncIBClient()
        self.offset, self.total = 0, 0
        self.sessions: list[dict] = []
        self.pending: asyncio.Task | None = None  # the newest load, for callers to await
        self._request = 0  # only the newest answer is drawn when searches overlap
        self._quiet = False  # set while Reset clears the filters: one reload, not seven

        self.q = w.Text(placeholder="names, challenges and conversations", description="Search",
                        continuous_update=False, layout=w.Layout(width="420px"),
                        style={"description_width": "56px"})
        self.candidate = w.Text(placeholder="part of a name", description="Candidate",
                                continuous_update=False, layout=w.Layout(width="250px"),
                                style={"description_width": "70px"})
        self.challenge = w.Dropdown(options=[("Any challenge", "")], value="",
                                    description="Challenge", layout=w.Layout(width="300px"),
                                    style={"description_width": "70px"})
        self.status = w.Dropdown(options=[("Any status", "")] + [(s, s) for s in fmt.STATUSES],
                                 value="", description="Status", layout=w.Layout(width="200px"),
                                 style={"description_width": "50px"})
        self.date_from = w.DatePicker(description="From", layout=w.Layout(width="210px"))
        self.date_to = w.DatePicker(description="To", layout=w.Layout(width="200px"))
        self.score = w.IntRangeSlider(value=(0, 100), min=0, max=100, step=5,
                                      description="Score %", continuous_update=False,
                                      layout=w.Layout(width="300px"))
        self.search = _button("Search", "Apply the filters", "ibh-search", button_style="primary")
        self.reset = _button("Reset", "Clear every filter", "ibh-reset")
        for widget in (self.q, self.candidate, self.challenge, self.status, self.date_from,
                       self.date_to, self.score):
            widget.observe(lambda _: self.reload(), "value")
        self.search.on_click(lambda _: self.reload())
        self.reset.on_click(lambda _: self.clear())

        self.rows = w.VBox()
        self.rows.add_class("ibh-rows")
        self.message = _message()
        self.prev = _button("‹ Previous", "Previous page", "ibh-prev")
        self.next = _button("Next ›", "Next page", "ibh-next")
        self.prev.on_click(lambda _: self.turn(-1))
        self.next.on_click(lambda _: self.turn(+1))
        self.position = w.HTML()
        self.position.add_class("ibh-position")
        sizes = sorted({*PAGE_SIZES, page_size})
        self.size = w.Dropdown(options=[(f"{n} a page", n) for n in sizes],
                               value=page_size, description="Page size",
                               layout=w.Layout(width="190px"),
                               style={"description_width": "70px"})
        self.size.observe(lambda _: self.reload(), "value")

        self.answer_key = w.Checkbox(value=True, indent=False,
                                     description="Exports include the answer key (hidden "
                                                 "tests, interviewer notes)")
        self.answer_key.add_class("ibh-answer-key")
        self.keys: dict[str, dict] = {}  # challenge id -> its interviewer view (this page's)

        filters = w.VBox([w.HBox([self.q, self.search, self.reset]),
                          w.HBox([self.candidate, self.challenge, self.status]),
                          w.HBox([self.date_from, self.date_to, self.score])])
        filters.add_class("ibh-filters")
        pager = w.HBox([self.prev, self.position, self.next, self.size])
        pager.add_class("ibh-pager")
        head = w.HBox([w.HTML(head_html()),
                       w.HTML('<span class="ibh-pick-head">Export (one click)</span>')])
        head.add_class("ibh-row")
        table = w.VBox([head, self.rows, self.message, pager, self.answer_key])
        table.add_class("ib-card")
        self.widget = w.VBox([_styles(), w.HTML('<h2 class="ib-h2">Interview history</h2>'),
                              filters, table])
        self.widget.add_class("ib-dash")
        self.widget.add_class("ibh-history")

    def _ipython_display_(self):
        display(self.widget)

    def filters(self) -> HistoryFilters:
        return HistoryFilters(q=self.q.value, candidate=self.candidate.value,
                              challenge_id=self.challenge.value or "", status=self.status.value,
                              date_from=self.date_from.value, date_to=self.date_to.value,
                              score=tuple(self.score.value))

    async def start(self) -> None:
        try:
            found = await library(self.client)
        except (httpx.HTTPError, ValueError) as e:
            self._fail(e)
            return
        self.challenge.options = [("Any challenge", "")] + [(c["title"], c["id"]) for c in found]
        await self.load()

    def reload(self) -> None:
        """A filter changed: back to the first page."""
        if self._quiet:
            return
        self.offset = 0
        self.pending = spawn(self.load())

    def clear(self) -> None:
        self._quiet = True
        try:
            for widget, empty in ((self.q, ""), (self.candidate, ""), (self.challenge, ""),
                                  (self.status, ""), (self.date_from, None),
                                  (self.date_to, None), (self.score, (0, 100))):
                widget.value = empty
        finally:
            self._quiet = False
        self.reload()

    def turn(self, pages: int) -> None:
        self.offset = max(0, self.offset + pages * self.size.value)
        self.pending = spawn(self.load())

    async def load(self) -> None:
        filters = self.filters()
        problems = filters.errors()
        if problems:
            self.rows.children, self.sessions = (), []
            self.message.value = fmt.notice("warn", " ".join(problems))
            return
        self._request += 1
        mine = self._request
        try:
            page = await search_sessions(self.client, filters, limit=self.size.value,
                                         offset=self.offset)
        except (IBClientError, httpx.HTTPError, ValueError) as e:
            if mine == self._request:
                self._fail(e)
            return
        if mine != self._request:
            return
        self.sessions, self.total = page["sessions"], page["total"]
        self.rows.children = [self._row(s) for s in self.sessions]
        empty = "No session matches these filters." if filters.params() else "No sessions yet."
        self.message.value = "" if self.sessions else f'<div class="ib-empty">{empty}</div>'
        shown = pager_text(self.offset, len(self.sessions), self.total)
        self.position.value = f'<span class="ib-muted">{shown}</span>'
        self.prev.disabled = self.offset == 0
        self.next.disabled = self.offset + len(self.sessions) >= self.total

    def _fail(self, e: Exception) -> None:
        reason = e.message if isinstance(e, IBClientError) else (str(e) or type(e).__name__)
        self.message.value = fmt.notice("error", f"Cannot read the sessions: {reason}")
        if strict():
            raise e

    def _row(self, s: dict) -> w.HBox:
        cells = w.HTML(row_html(s))
        who = s.get("candidate_name") or s["id"]
        downloads = Downloads(lambda f, s=s: self.export(s, f), formats=list(FORMATS),
                              label=f"Export {who}'s session {s['id']} as")
        row = w.HBox([cells, downloads])
        row.add_class("ib-row")
        row.add_class("ibh-row")
        return row

    async def export(self, s: dict, fmt_name: str) -> tuple[str, str, str]:
        """(file name, MIME type, text) of one session's export, for a download."""
        record = await self.client.record(s["id"])
        key = await self.answer_key_for(record) if self.answer_key.value else None
        # The exporters (nbformat, nbconvert, plotly) are imported on the first download,
        # and nbconvert (html) takes a second or two: keep the page responsive meanwhile.
        text = await asyncio.to_thread(_render, record, fmt_name, key)
        return file_name(s["id"], fmt_name), MIMES[fmt_name], text

    async def answer_key_for(self, record: dict) -> dict:
        """The interviewer's view of the record's challenge ({} for custom text)."""
        challenge_id = (record.get("challenge") or {}).get("id")
        if not challenge_id:
            return {}
        if challenge_id not in self.keys:
            try:
                self.keys[challenge_id] = await self.client.challenge(challenge_id)
            except IBClientError as e:
                if e.status != 404:
                    raise
                self.keys[challenge_id] = {}  # no longer in the library
        return self.keys[challenge_id]


class ReplayPage:
    def __init__(self, client=None, session_id: str | None = None):
        self.client = client or AsyncIBClient()
        self.session_id = session_id if session_id is not None else requested_session()
        self.record: dict | None = None
        self.steps: list[Step] = []
        self.stepper = Stepper(0)
        self.pending: asyncio.Task | None = None  # the newest load, for callers to await
        self.header = w.HTML()
        self.message = _message()
        self.picker = w.Dropdown(options=[], description="Session",
                                 layout=w.Layout(width="640px", display="none"),
                                 style={"description_width": "60px"})
        self.picker.add_class("ibh-picker")
        self.picker.observe(self._picked, "value")
        self.first = _button("« First", "First step", "ibh-first")
        self.back = _button("◀ Back", "Previous step", "ibh-back")
        self.forward = _button("Forward ▶", "Next step", "ibh-forward", button_style="primary")
        self.last = _button("Last »", "Last step", "ibh-last")
        self.slider = w.IntSlider(min=0, max=0, value=0, readout=False,
                                  layout=w.Layout(width="420px"))
        self.slider.add_class("ibh-slider")
        self.where = w.HTML()
        self.where.add_class("ibh-where")
        self.first.on_click(lambda _: self.show(self.stepper.first()))
        self.back.on_click(lambda _: self.show(self.stepper.back()))
        self.forward.on_click(lambda _: self.show(self.stepper.forward()))
        self.last.on_click(lambda _: self.show(self.stepper.last()))
        self.slider.observe(lambda change: self.show(self.stepper.go(change["new"])), "value")
        self.step = w.HTML()
        self.step.add_class("ibh-step-box")
        self.state = w.HTML()
        self.state.add_class("ibh-state")
        self.near = w.HTML()
        self.near.add_class("ibh-nearby")
        self.slider.description = "Step"
        self.keys = Keys(self.key, shortcuts=[["ArrowLeft", "←", "previous step"],
                                              ["ArrowRight", "→", "next step"],
                                              ["Home", "Home", "first"],
                                              ["End", "End", "last"]])
        controls = w.HBox([self.first, self.back, self.slider, self.forward, self.last,
                           self.where])
        controls.add_class("ibh-controls")
        side = w.VBox([w.HTML('<h3 class="ib-h3">So far</h3>'), self.state,
                       w.HTML('<h3 class="ib-h3">Around this step</h3>'), self.near])
        side.add_class("ib-card")
        side.add_class("ibh-side")
        main = w.VBox([self.step])
        main.add_class("ib-card")
        main.add_class("ibh-main")
        self.body = w.HBox([main, side])
        self.body.add_class("ibh-body")
        self.player = w.VBox([controls, self.keys, self.body])
        self.player.layout.display = "none"
        self.widget = w.VBox([_styles(), self.header, self.message, self.picker, self.player])
        self.widget.add_class("ib-dash")
        self.widget.add_class("ibh-replay")

    def _ipython_display_(self):
        display(self.widget)

    async def start(self) -> None:
        if self.session_id:
            await self.open(self.session_id)
            return
        self.message.value = ('<div class="ib-notice ib-notice-info">No session chosen: pick '
                              'a recent one here, or search them all on the '
                              '<a href="history.ipynb">History</a> page.</div>')
        try:
            recent = (await self.client.list_sessions(limit=RECENT))["sessions"]
        except (IBClientError, httpx.HTTPError, ValueError) as e:
            self._fail("Cannot list the sessions", e)
            return
        self.picker.options = [("Pick a session…", "")] + [
            (f"{s.get('candidate_name') or s['id']} — {fmt.challenge_title(s)} — "
             f"{(s.get('created_at') or '')[:16].replace('T', ' ')}", s["id"]) for s in recent]
        self.picker.layout.display = "flex"

    def _picked(self, change) -> None:
        if change["new"]:
            self.pending = spawn(self.open(change["new"]))

    async def open(self, session_id: str) -> None:
        self.session_id = session_id
        if not SESSION_ID.fullmatch(session_id):  # it came from the page's URL
            self.message.value = fmt.notice(
                "error", f"There is no session with id {session_id!r}: session ids look like "
                         "s_0123456789ab. Pick one on the History page.")
            return
        try:
            record = await self.client.record(session_id)
        except (IBClientError, httpx.HTTPError, ValueError) as e:
            self._fail(f"Cannot load session {session_id}", e)
            return
        self.message.value = ""
        self.load(record)

    def _fail(self, what: str, e: Exception) -> None:
        reason = e.message if isinstance(e, IBClientError) else (str(e) or type(e).__name__)
        self.message.value = fmt.notice("error", f"{what}: {reason}")
        if strict():
            raise e

    def load(self, record: dict) -> None:
        self.record = record
        self.steps = timeline(record)
        s = record["session"]
        self.header.value = (
            f'<div class="ibh-title"><a class="ibh-back-link" href="history.ipynb">‹ History</a>'
            f'<span class="ib-panel-name">{fmt.esc(s.get("candidate_name") or s["id"])}</span>'
            f'<span class="ib-muted">{fmt.esc(fmt.challenge_title(s))} · '
            f'<code>{fmt.esc(s["id"])}</code></span> {fmt.status_badge(s)} '
            f'<span class="ib-muted">score {session_score(s)}</span></div>')
        if not self.steps:
            self.player.layout.display = "none"
            self.message.value = fmt.notice("info", "Nothing happened in this session yet.")
            return
        self.stepper = Stepper(len(self.steps))
        self.slider.max = len(self.steps) - 1
        self.player.layout.display = "flex"
        self.show(0)

    def key(self, key: str) -> None:
        moves = {"ArrowLeft": self.stepper.back, "ArrowRight": self.stepper.forward,
                 "Home": self.stepper.first, "End": self.stepper.last}
        if self.steps and key in moves:
            self.show(moves[key]())

    def show(self, index: int) -> None:
        if not self.steps:
            return
        index = self.stepper.go(index)
        step = self.steps[index]
        if self.slider.value != index:
            self.slider.value = index  # re-enters show() once, with the same index
        self.step.value = step_html(step, len(self.steps))
        self.state.value = state_html(step, self.record["session"])
        self.near.value = nearby_html(self.steps, index)
        self.where.value = (f'<span class="ibh-counter">{index + 1} / {len(self.steps)}</span>')
        self.first.disabled = self.back.disabled = self.stepper.at_start
        self.forward.disabled = self.last.disabled = self.stepper.at_end


CSS = """
.ibh-history, .ibh-replay, .ibh-body, .ibh-history .ib-card { width: 100%; box-sizing: border-box; }
.ibh-filters { gap: 8px; margin-bottom: 4px; }
.ibh-filters > .widget-hbox { gap: 10px; align-items: center; flex-wrap: wrap; }
.ibh-message:has(> .widget-html-content:empty) { display: none; }
.ibh-grid { display: grid; grid-template-columns: minmax(120px, 1.2fr) 128px minmax(120px, 1.2fr)
  100px 120px 54px 70px 40px 70px; gap: 10px; align-items: center; font-size: 13px; }
.ibh-grid .ib-download { margin-left: 0; padding: 3px 12px; }
.ibh-pick-head { display: inline-block; width: 250px; font-size: 11px; text-transform: uppercase;
  letter-spacing: 0.6px; font-weight: 600; color: var(--ib-muted); }
.ibh-grid > span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ibh-name { font-weight: 650; }
.ibh-row { align-items: center; padding: 4px 8px; }
.ibh-row > .widget-html:first-child { flex: 1; }
.ibh-row > :last-child { flex: none; width: 250px; }
.ibh-rows { gap: 2px; }
.ibh-pager { align-items: center; gap: 10px; margin-top: 8px; }
.ibh-position { min-width: 140px; text-align: center; }
.ibh-title { display: flex; align-items: baseline; gap: 12px; margin-bottom: 6px; flex-wrap: wrap; }
.ibh-back-link { color: var(--ib-primary, #3b5bdb); text-decoration: none; font-weight: 600; }
.ibh-controls { align-items: center; gap: 8px; margin-bottom: 10px; }
.ibh-controls .jupyter-button { width: auto; min-width: 44px; }
.ibh-counter { font-variant-numeric: tabular-nums; font-weight: 600; padding-left: 6px; }
.ibh-body { gap: 16px; align-items: flex-start; }
.ibh-main { flex: 3 1 0; min-width: 0; }
.ibh-side { flex: 1.3 1 0; min-width: 280px; }
.ibh-step-box .widget-html-content, .ibh-nearby .widget-html-content,
.ibh-state .widget-html-content { display: block; line-height: 1.45; }
.ibh-step-head { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; margin-bottom: 10px; }
.ibh-step-title { font-size: 17px; font-weight: 650; }
.ibh-step-when { font-size: 12px; }
.ibh-chip { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px;
  font-weight: 650; text-transform: uppercase; letter-spacing: 0.4px; background: #e9ecef; color: #495057; }
.ibh-chip-question { background: #e7f0ff; color: #1c5ed6; }
.ibh-chip-answer { background: #f3f0ff; color: #6741d9; }
.ibh-chip-cell { background: #e6fcf5; color: #087f5b; }
.ibh-chip-snapshot, .ibh-chip-submit { background: #fff9db; color: #8a4b00; }
.ibh-chip-copy, .ibh-chip-paste { background: #fff4e6; color: #a33a0a; }
.ibh-chip-interviewer { background: #1f2a44; color: #fff; }
.ibh-msg { border-radius: 10px; padding: 10px 14px; line-height: 1.45; }
.ibh-msg-question { background: #e7f0ff; border: 1px solid #c9dbff; }
.ibh-msg-answer { background: #fff; border: 1px solid #e3e6ea; }
.ibh-text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0; }
.ibh-code, .ibh-diff-body { background: #f1f3f5; border-radius: 6px; padding: 8px 10px; margin: 6px 0;
  font-size: 12px; overflow-x: auto; white-space: pre;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace !important; }
.ibh-meta { font-size: 12px; margin-top: 6px; }
.ibh-diff-summary { font-weight: 600; margin-bottom: 6px; }
.ibh-diff { margin-bottom: 10px; }
.ibh-near { display: grid; grid-template-columns: 50px 112px 1fr; gap: 6px; padding: 3px 6px;
  font-size: 12px; border-radius: 6px; align-items: baseline; }
.ibh-near > span:last-child { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ibh-state .ib-bar { min-width: 200px; }
.ibh-near-current { background: #edf2ff; font-weight: 600; }
"""
