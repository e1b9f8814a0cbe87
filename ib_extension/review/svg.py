"""The analytics charts as static SVG, for files that must render with no script and no
network: the HTML export shows these (plotly's interactive charts need its 4 MB
library). Drawn from the same rows as the plotly charts (analytics.py) in the same
colours; every text is XML-escaped."""

from __future__ import annotations

import math
from html import escape

from .analytics import message_timeline, time_utilisation, token_timeline
from .layout import label_rows

COLORS = {
    "tokens": "#3b5bdb", "budget": "#868e96", "action": "#c2410c", "active": "#2f9e44",
    "paused": "#e03131", "unused": "#dee2e6", "ai": "#7048e8", "user": "#1c7ed6",
    "ink": "#343a40", "grid": "#e9ecef",
}
STATE_NAMES = {"active": "active", "paused": "paused", "unused": "time left", "ai": "AI replying"}
WIDTH, LEFT, RIGHT = 820, 64, 24
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
ROW_PX = 15


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(math.ceil(top / step)) + 1)]


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


class _Canvas:
    def __init__(self, title: str, height: int, top: int, x_max: float, y_max: float | None):
        self.title, self.height, self.top = title, height, top
        self.bottom = height - 40
        self.xticks = nice_ticks(x_max)
        self.x_max = self.xticks[-1]
        self.yticks = nice_ticks(y_max) if y_max is not None else None
        self.y_max = self.yticks[-1] if self.yticks else 1.0
        self.parts: list[str] = []

    @property
    def px_per_x(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.x_max

    def x(self, value: float) -> float:
        return round(LEFT + value * self.px_per_x, 1)

    def y(self, value: float) -> float:
        return round(self.bottom - value / self.y_max * (self.bottom - self.top), 1)

    def text(self, x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
             color: str = COLORS["ink"], weight: str = "normal") -> None:
        self.parts.append(f'<text x="{x}" y="{y}" font-size="{size}" fill="{color}" '
                          f'text-anchor="{anchor}" font-weight="{weight}">{escape(text)}</text>')

    def axes(self, x_title: str, y_title: str | None) -> None:
        for tick in self.xticks:
            x = self.x(tick)
            self.parts.append(f'<line x1="{x}" x2="{x}" y1="{self.top}" y2="{self.bottom}" '
                              f'stroke="{COLORS["grid"]}"/>')
            self.text(x, self.bottom + 15, _num(tick), anchor="middle")
        self.text((LEFT + WIDTH - RIGHT) / 2, self.bottom + 32, x_title, anchor="middle")
        if self.yticks:
            for tick in self.yticks:
                y = self.y(tick)
                self.parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
                                  f'stroke="{COLORS["grid"]}"/>')
                self.text(LEFT - 6, y + 4, _num(tick), anchor="end")
        if y_title:
            mid = (self.top + self.bottom) / 2
            self.parts.append(f'<text x="14" y="{mid}" font-size="11" fill="{COLORS["ink"]}" '
                              f'text-anchor="middle" transform="rotate(-90 14 {mid})">'
                              f'{escape(y_title)}</text>')

    def legend(self, items: list[tuple[str, str, str]]) -> None:
        """(kind: line|dash|box|diamond|dot, colour, name), right-aligned on the title row."""
        x = WIDTH - RIGHT
        for kind, color, name in reversed(items):
            x -= len(name) * 6.4 + 6
            self.text(x, 20, name)
            x -= 22
            self.parts.append(_swatch(kind, color, x, 16))
            x -= 12

    def svg(self, description: str) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {self.height}" '
                f'width="{WIDTH}" height="{self.height}" role="img" font-family="{FONT}" '
                f'class="ib-svg-chart"><title>{escape(self.title)}</title>'
                f'<desc>{escape(description)}</desc>'
                f'<rect width="100%" height="100%" fill="#ffffff"/>')
        title = (f'<text x="10" y="20" font-size="14" font-weight="600" fill="{COLORS["ink"]}">'
                 f'{escape(self.title)}</text>')
        return head + title + "".join(self.parts) + "</svg>"


def _swatch(kind: str, color: str, x: float, y: float) -> str:
    if kind in ("line", "dash"):
        dash = ' stroke-dasharray="4 3"' if kind == "dash" else ""
        return (f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" stroke="{color}" '
                f'stroke-width="2.5"{dash}/>')
    if kind == "diamond":
        return _diamond(x + 9, y, color)
    if kind == "dot":
        return f'<circle cx="{x + 9}" cy="{y}" r="5" fill="{color}"/>'
    return f'<rect x="{x + 2}" y="{y - 6}" width="14" height="12" fill="{color}"/>'


def _diamond(x: float, y: float, color: str) -> str:
    return (f'<path d="M{x} {y - 6} L{x + 6} {y} L{x} {y + 6} L{x - 6} {y} Z" fill="{color}"/>')


def _steps(canvas: _Canvas, points: list[tuple[float, float]]) -> str:
    """A step line (horizontal, then vertical) through `points`."""
    path = []
    for i, (x, y) in enumerate(points):
        if i == 0:
            path.append(f"M{canvas.x(x)} {canvas.y(y)}")
        else:
            path.append(f"H{canvas.x(x)} V{canvas.y(y)}")
    return " ".join(path)


def _minutes(seconds: float) -> float:
    return seconds / 60


def token_usage(record, who: str) -> str:
    rows = token_timeline(record)
    actions = [r for r in rows if r["kind"] == "action"]
    x_max = max([_minutes(r["t"]) for r in rows] + [1.0])
    y_max = max([r["budget"] for r in rows] + [r["tokens"] for r in rows] + [1])
    probe = _Canvas("", 0, 0, x_max, y_max)
    label_row = label_rows([_minutes(r["t"]) for r in actions], [r["label"] for r in actions],
                           probe.px_per_x)
    label_rows_used = max(label_row, default=-1) + 1
    top = 40 + label_rows_used * ROW_PX
    c = _Canvas(f"Token usage — {who}", top + 250, top, x_max, y_max)
    c.axes("minutes since start", "tokens")
    points = [(_minutes(r["t"]), r["budget"]) for r in rows]
    c.parts.append(f'<path d="{_steps(c, points)}" fill="none" stroke="{COLORS["budget"]}" '
                   f'stroke-width="1.5" stroke-dasharray="6 4"/>')
    points = [(_minutes(r["t"]), r["tokens"]) for r in rows]
    c.parts.append(f'<path d="{_steps(c, points)}" fill="none" stroke="{COLORS["tokens"]}" '
                   f'stroke-width="2.5"/>')
    for r, row in zip(actions, label_row, strict=True):
        x, y = c.x(_minutes(r["t"])), c.y(r["tokens"])
        label_y = 40 + row * ROW_PX + 10
        c.parts.append(f'<line x1="{x}" x2="{x}" y1="{label_y + 3}" y2="{y}" '
                       f'stroke="{COLORS["action"]}" stroke-width="1" stroke-dasharray="2 3"/>')
        c.parts.append(_diamond(x, y, COLORS["action"]))
        c.text(x, label_y, r["label"], anchor="middle", color=COLORS["action"])
    c.legend([("line", COLORS["tokens"], "tokens used"), ("dash", COLORS["budget"], "budget"),
              ("diamond", COLORS["action"], "interviewer action")])
    used = rows[-1]["tokens"] if rows else 0
    return c.svg(f"{used:,} tokens used of a {rows[-1]['budget'] if rows else 0:,} budget; "
                 f"{len(actions)} interviewer actions marked.")


def _lanes(c: _Canvas, lanes: list[str]) -> dict[str, tuple[float, float]]:
    """Lane name -> (y, height) of its band, labelled on the left."""
    band = (c.bottom - c.top) / len(lanes)
    found = {}
    for i, lane in enumerate(lanes):
        y = c.top + i * band + band * 0.2
        found[lane] = (round(y, 1), round(band * 0.6, 1))
        c.text(LEFT - 6, y + band * 0.3 + 4, lane, anchor="end")
    return found


def _bar(c: _Canvas, lane: tuple[float, float], start: float, end: float, color: str,
         label: str) -> str:
    x0, x1 = c.x(start), c.x(end)
    width = max(1.5, x1 - x0)
    return (f'<rect x="{x0}" y="{lane[0]}" width="{round(width, 1)}" height="{lane[1]}" '
            f'fill="{color}"><title>{escape(label)}</title></rect>')


def time_utilisation_chart(record, who: str) -> str:
    rows = time_utilisation(record)
    x_max = max([_minutes(r["end"]) for r in rows] + [1.0])
    c = _Canvas(f"Time — {who}", 200, 40, x_max, None)
    c.axes("minutes since start", None)
    lanes = _lanes(c, ["session", "AI replying"])
    for r in rows:
        lane = lanes["session" if r["lane"] == "session" else "AI replying"]
        c.parts.append(_bar(c, lane, _minutes(r["start"]), _minutes(r["end"]), COLORS[r["state"]],
                            f"{STATE_NAMES[r['state']]}: {r['seconds'] / 60:.1f} min"))
    shown = [s for s in ("active", "paused", "unused", "ai") if any(r["state"] == s for r in rows)]
    c.legend([("box", COLORS[s], STATE_NAMES[s]) for s in shown])
    active = sum(r["seconds"] for r in rows if r["state"] == "active")
    return c.svg(f"{active / 60:.1f} minutes active; time spent paused, left, and with the "
                 "AI replying shown on two lanes.")


def conversation(record, who: str) -> str:
    rows = message_timeline(record)
    x_max = max([_minutes(r["t"] + r["latency_seconds"]) for r in rows] + [1.0])
    c = _Canvas(f"Conversation — {who}", 180, 40, x_max, None)
    c.axes("minutes since start", None)
    lanes = _lanes(c, ["candidate", "AI"])
    for r in rows:
        start = _minutes(r["t"])
        if r["role"] == "user":
            y = lanes["candidate"][0] + lanes["candidate"][1] / 2
            c.parts.append(f'<circle cx="{c.x(start)}" cy="{y}" r="5" fill="{COLORS["user"]}">'
                           f'<title>{escape(r["preview"])}</title></circle>')
        else:
            end = start + max(_minutes(r["latency_seconds"]), 0.05)
            c.parts.append(_bar(c, lanes["AI"], start, end, COLORS["ai"],
                                f"{r['prompt_tokens'] + r['completion_tokens']} tokens billed, "
                                f"{r['latency_seconds']:.1f} s ({r['status']})"))
    c.legend([("dot", COLORS["user"], "question"), ("box", COLORS["ai"], "reply")])
    asked = sum(1 for r in rows if r["role"] == "user")
    return c.svg(f"{asked} questions to the AI and their replies over time.")
