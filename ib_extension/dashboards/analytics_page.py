"""Analytics: one session's summary cards and charts, the candidates who took the same
challenge side by side, and the numbers as CSV/JSON downloads."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from urllib.parse import parse_qs

import httpx
import ipywidgets as w
from IPython.display import display

from ..api.client import AsyncIBClient, IBClientError
from ..api.models import score_text
from . import fmt
from .live import spawn, strict

PLOTLY_MIME = "application/vnd.plotly.v1+json"
COMPARE_AT_MOST = 12
CHARTS = ("tokens", "time", "messages")  # the newest sessions of a challenge drawn side by side


def requested_session(query_string: str | None = None) -> str | None:
    """`?session=ID` of the page's URL (Voilà passes the query string to the kernel)."""
    query = os.environ.get("QUERY_STRING", "") if query_string is None else query_string
    return (parse_qs(query).get("session") or [None])[0]


def challenge_key(session: dict) -> str:
    """Sessions are comparable when they share a library id, else the same custom title."""
    ch = session.get("challenge") or {}
    return f"id:{ch['id']}" if ch.get("id") else f"title:{ch.get('title') or ''}"


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def cards(summary: dict) -> list[tuple[str, str, str]]:
    """(label, value, detail) of each summary card."""
    s = summary
    first = s["first_question_after_seconds"]
    graded = s["score"] is not None
    out = [
        ("Time used", fmt.clock(s["time_used_seconds"]),
         f"of {fmt.clock(s['time_limit_seconds'])}"
         + (f" (+{fmt.clock(s['time_extended_seconds'])} extended)"
            if s["time_extended_seconds"] else "")),
        ("Paused", fmt.clock(s["time_paused_seconds"]),
         f"{s['pauses']} pause{'s' * (s['pauses'] != 1)}"),
        ("Messages", f"{s['messages_user']} ↔ {s['messages_assistant']}",
         "questions ↔ replies"
         + (f", {s['replies_incomplete']} incomplete" if s["replies_incomplete"] else "")),
        ("Tokens billed", f"{s['tokens_total']:,}",
         f"{s['tokens_prompt']:,} prompt · {s['tokens_completion']:,} completion · "
         f"{_pct(s['budget_used_share'])} of budget"),
        ("Tokens per question", "–" if s["tokens_per_question"] is None
         else f"{s['tokens_per_question']:,.0f}", ""),
        ("First AI question", "–" if first is None else f"after {fmt.clock(first)}",
         "since the start"),
        ("Time with the AI", _pct(s["ai_time_share"]),
         f"{fmt.clock(s['ai_wait_seconds'])} waiting for replies"),
        ("Refusals", str(s["refusals"]),
         f"{s['warnings']} warning{'s' * (s['warnings'] != 1)} · "
         f"{s['injection_flags']} injection flag{'s' * (s['injection_flags'] != 1)}"),
    ]
    if graded:
        out.append(("Score", score_text(s["score"]), f"{s['tests_passed']}/{s['tests_total']} tests"))
    return out


def cards_html(summary: dict) -> str:
    return '<div class="ib-cards">' + "".join(
        f'<div class="ib-stat"><div class="ib-stat-label">{fmt.esc(label)}</div>'
        f'<div class="ib-stat-value">{fmt.esc(value)}</div>'
        f'<div class="ib-stat-detail">{fmt.esc(detail)}</div></div>'
        for label, value, detail in cards(summary)) + "</div>"


def download_link(text: str, filename: str, mime: str, label: str) -> str:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (f'<a class="ib-download" download="{fmt.esc(filename)}" '
            f'href="data:{mime};charset=utf-8;base64,{data}">{fmt.esc(label)}</a>')


def session_label(s: dict) -> str:
    started = (s.get("started_at") or s.get("created_at") or "")[:16].replace("T", " ")
    return (f"{s.get('candidate_name') or s['id']} — {fmt.challenge_title(s)} — "
            f"{s.get('status')} — {started} — {s['id']}")


class AnalyticsPage:
    def __init__(self, client=None, session_id: str | None = None):
        self.client = client or AsyncIBClient()
        self.wanted = session_id if session_id is not None else requested_session()
        self.sessions: dict[str, dict] = {}
        self.record: dict | None = None
        self.group: list[dict] = []
        self.drawing: asyncio.Task | None = None
        self.picker = w.Dropdown(options=[], description="Session",
                                 layout=w.Layout(width="640px"),
                                 style={"description_width": "60px"})
        self.picker.add_class("ib-picker")
        self.picker.observe(self._picked, "value")
        self.status = w.HTML()
        self.cards = w.HTML()
        self.charts = w.VBox()
        self.charts.add_class("ib-charts")
        self.compare = w.VBox()
        self.compare.add_class("ib-compare")
        self.exports = w.HTML()
        self.exports.add_class("ib-exports")
        top = w.HBox([self.picker, self.exports])
        top.add_class("ib-analytics-top")
        self.widget = w.VBox([top, self.status, self.cards, self.charts, self.compare])
        self.widget.add_class("ib-dash")
        self.widget.add_class("ib-analytics")

    def _ipython_display_(self):
        display(self.widget)

    async def start(self) -> None:
        try:
            page = await self.client.list_sessions(limit=500)
        except (IBClientError, httpx.HTTPError, ValueError) as e:
            self.status.value = fmt.notice("error", f"Cannot reach the ib service: {_reason(e)}")
            if strict():
                raise
            return
        sessions = page["sessions"]
        self.sessions = {s["id"]: s for s in sessions}
        if not sessions:
            self.status.value = fmt.notice("info", "No sessions yet: analytics appear once an "
                                                   "interview has taken place.")
            return
        # Finished interviews first: those are the ones read here.
        ordered = sorted(sessions, key=lambda s: (s.get("status") not in fmt.ENDED,
                                                  _neg_time(s)))
        self.picker.unobserve(self._picked, "value")
        self.picker.options = [(session_label(s), s["id"]) for s in ordered]
        first = self.wanted if self.wanted in self.sessions else ordered[0]["id"]
        self.picker.value = first
        self.picker.observe(self._picked, "value")
        await self.show(first)

    def _picked(self, change) -> None:
        if change["new"]:
            spawn(self.show(change["new"]))

    async def show(self, session_id: str) -> None:
        from ..review import analytics

        self.status.value = fmt.notice("info", "Loading…")
        try:
            record = await self.client.record(session_id)
        except IBClientError as e:
            self.status.value = fmt.notice("error", e.message)
            if strict():
                raise
            return
        if self.picker.value != session_id:  # another session was picked meanwhile
            return
        self.record, self.group = record, [record]
        self.cards.value = cards_html(analytics.summary(record))
        self.exports.value = self.export_links(record, [record])
        self.status.value = ""
        # Charts and the comparison follow the first paint: drawing plots and reading the
        # other candidates' records are the slow parts of the page.
        self.charts.children = [_chart_box(name) for name in CHARTS]
        self.compare.children = []
        self.drawing = spawn(self.draw_charts(record))

    async def draw_charts(self, record: dict) -> None:
        from ..review import figures

        await asyncio.sleep(0)  # let the page (cards, picker) go out first
        charts = {"tokens": figures.fig_token_usage, "time": figures.fig_time_utilisation,
                  "messages": figures.fig_message_timeline}
        for box, name in zip(self.charts.children, CHARTS, strict=True):
            _draw(box, charts[name](record))
        try:
            group = await self._group(record)
        except IBClientError as e:
            self.status.value = fmt.notice("error", f"No comparison: {e.message}")
            return
        if self.record is not record:  # another session was picked meanwhile
            return
        self.group = group
        title = fmt.challenge_title(record["session"])
        if len(group) > 1:
            box = _chart_box("compare")
            _draw(box, figures.fig_compare(group))
            self.compare.children = [
                w.HTML(f'<h3 class="ib-h3">Comparison: {len(group)} candidates on '
                       f'{fmt.esc(title)}</h3>'), box]
        else:
            self.compare.children = [w.HTML(
                f'<div class="ib-muted ib-compare-none">No other candidate has taken '
                f'{fmt.esc(title)} yet: the comparison appears when one has.</div>')]
        self.exports.value = self.export_links(record, group)

    async def _group(self, record: dict) -> list[dict]:
        """Records of the newest sessions on the same challenge, this one first."""
        session = record["session"]
        key = challenge_key(session)
        ch_id = (session.get("challenge") or {}).get("id")
        page = await self.client.list_sessions(challenge_id=ch_id, limit=500) if ch_id else \
            {"sessions": list(self.sessions.values())}
        peers = [s for s in page["sessions"] if challenge_key(s) == key and s["id"] != session["id"]
                 and s.get("started_at")]
        peers = sorted(peers, key=_neg_time)[:COMPARE_AT_MOST - 1]
        records = [record]
        for s in peers:
            records.append(await self.client.record(s["id"]))
        return records

    @staticmethod
    def export_links(record: dict, group: list[dict]) -> str:
        from ..review import analytics

        sid = record["session"]["id"]
        links = [download_link(analytics.to_csv([record]), f"{sid}.csv", "text/csv", "CSV"),
                 download_link(analytics.to_json([record]), f"{sid}.json", "application/json",
                               "JSON")]
        if len(group) > 1:
            links += [download_link(analytics.to_csv(group), "challenge-sessions.csv", "text/csv",
                                    f"CSV ({len(group)} sessions)"),
                      download_link(analytics.to_json(group), "challenge-sessions.json",
                                    "application/json", f"JSON ({len(group)} sessions)")]
        return '<span class="ib-muted">Export</span> ' + " ".join(links)


def _chart_box(name: str) -> w.Output:
    out = w.Output()
    out.add_class("ib-chart")
    out.add_class(f"ib-chart-{name}")
    return out


def _draw(out: w.Output, fig) -> None:
    """A figure as plotly's own mime type, drawn by the jupyterlab-plotly renderer that
    Voilà loads once per page (a FigureWidget would ship plotly.js with every chart)."""
    fig.update_layout(autosize=True, width=None)
    # plain JSON; no mode bar: its icon links have no accessible names (axe-core)
    bundle = json.loads(fig.to_json()) | {"config": {"displaylogo": False,
                                                     "displayModeBar": False}}
    # Set as the output's state (not captured output), so any task may draw it.
    out.outputs = ({"output_type": "display_data", "data": {PLOTLY_MIME: bundle},
                    "metadata": {}},)


def _neg_time(s: dict) -> float:
    at = fmt.parse_time(s.get("started_at") or s.get("created_at"))
    return -at.timestamp() if at else 0.0


def _reason(e: Exception) -> str:
    if isinstance(e, IBClientError):
        return e.message
    return str(e) or type(e).__name__
