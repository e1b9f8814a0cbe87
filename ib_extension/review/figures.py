"""The analytics charts (plotly): imported only where charts are drawn."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .analytics import message_timeline, summary, time_utilisation, token_timeline

COLORS = {
    "tokens": "#3b5bdb",
    "budget": "#868e96",
    "action": "#f08c00",
    "active": "#37b24d",
    "paused": "#f03e3e",
    "unused": "#dee2e6",
    "ai": "#7048e8",
    "user": "#1c7ed6",
}
STATE_NAMES = {"active": "active", "paused": "paused", "unused": "time left", "ai": "AI replying"}
FIGURE_HEIGHT = 360


def styled(fig: go.Figure, title: str, *, height: int = FIGURE_HEIGHT, **layout) -> go.Figure:
    """The one look every Interview Buddy chart shares; ``layout`` adds to it or overrides."""
    look = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "template": "plotly_white",
        "height": height,
        "font": {
            "family": "system-ui, -apple-system, 'Segoe UI', sans-serif",
            "size": 12,
            "color": "#343a40",
        },
        "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        "hoverlabel": {"font": {"family": "system-ui, sans-serif"}},
    }
    fig.update_layout(**{**look, **layout})
    return fig


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 3)


def _who(record) -> str:
    # Plotly reads a few HTML tags in text; a name is shown as typed, never as markup.
    return html.escape(record["session"].get("candidate_name") or record["session"]["id"])


def fig_token_usage(record) -> go.Figure:
    rows = token_timeline(record)
    x = [_minutes(r["t"]) for r in rows]
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=[r["tokens"] for r in rows],
        name="tokens used",
        mode="lines",
        line={"shape": "hv", "color": COLORS["tokens"], "width": 2.5},
    )
    fig.add_scatter(
        x=x,
        y=[r["budget"] for r in rows],
        name="budget",
        mode="lines",
        line={"shape": "hv", "color": COLORS["budget"], "dash": "dash"},
    )
    actions = [r for r in rows if r["kind"] == "action"]
    fig.add_scatter(
        x=[_minutes(r["t"]) for r in actions],
        y=[r["tokens"] for r in actions],
        name="interviewer action",
        mode="markers+text",
        text=[r["label"] for r in actions],
        # Alternate left and right so that close actions do not overprint.
        textposition=[("top left", "top right")[i % 2] for i in range(len(actions))],
        marker={"symbol": "diamond", "size": 10, "color": COLORS["action"]},
    )
    return styled(
        fig,
        f"Token usage — {_who(record)}",
        xaxis_title="minutes since start",
        yaxis_title="tokens",
        yaxis_rangemode="tozero",
    )


def fig_time_utilisation(record) -> go.Figure:
    rows = time_utilisation(record)
    lanes = {"session": "session", "ai": "AI replying"}
    fig = go.Figure()
    for state in ("active", "paused", "unused", "ai"):
        segs = [r for r in rows if r["state"] == state]
        if segs:
            fig.add_bar(
                y=[lanes[r["lane"]] for r in segs],
                x=[_minutes(r["seconds"]) for r in segs],
                base=[_minutes(r["start"]) for r in segs],
                orientation="h",
                name=STATE_NAMES[state],
                marker_color=COLORS[state],
                hovertemplate="%{base:.1f}–%{customdata:.1f} min<extra>"
                + STATE_NAMES[state]
                + "</extra>",
                customdata=[_minutes(r["end"]) for r in segs],
            )
    return styled(
        fig,
        f"Time — {_who(record)}",
        height=240,
        barmode="overlay",
        xaxis_title="minutes since start",
        yaxis={"autorange": "reversed"},
    )


def fig_message_timeline(record) -> go.Figure:
    rows = message_timeline(record)
    user = [r for r in rows if r["role"] == "user"]
    ai = [r for r in rows if r["role"] == "assistant"]
    fig = go.Figure()
    fig.add_scatter(
        x=[_minutes(r["t"]) for r in user],
        y=["candidate"] * len(user),
        mode="markers",
        name="question",
        marker={"color": COLORS["user"], "size": 11},
        text=[f"{r['prompt_tokens']} prompt tokens<br>{html.escape(r['preview'])}" for r in user],
        hovertemplate="%{x:.1f} min<br>%{text}<extra></extra>",
    )
    fig.add_bar(
        y=["AI"] * len(ai),
        x=[max(_minutes(r["latency_seconds"]), 0.05) for r in ai],
        base=[_minutes(r["t"]) for r in ai],
        orientation="h",
        name="reply",
        marker_color=COLORS["ai"],
        text=[
            f"{r['completion_tokens']} completion tokens, {r['latency_seconds']:.1f} s "
            f"({r['status']})<br>{html.escape(r['preview'])}"
            for r in ai
        ],
        textposition="none",
        hovertemplate="%{base:.1f} min<br>%{text}<extra></extra>",
    )
    return styled(
        fig,
        f"Conversation — {_who(record)}",
        height=240,
        xaxis_title="minutes since start",
        yaxis={"autorange": "reversed"},
    )


COMPARED = (
    ("tokens_total", "Tokens used", 1),
    ("active_seconds", "Active minutes", 1 / 60),
    ("ai_time_share", "AI time share (%)", 100),
    ("score", "Score", 1),
)


def fig_compare(records: list[dict]) -> go.Figure:
    """Candidates who took the same challenge, side by side."""
    if not records:
        raise ValueError("fig_compare needs at least one session record")
    rows = [summary(r) for r in records]
    challenges = {r["challenge_id"] for r in rows}
    if len(challenges) > 1:
        raise ValueError(
            f"fig_compare compares one challenge; these records span {sorted(map(str, challenges))}"
        )
    fig = make_subplots(rows=1, cols=len(COMPARED), subplot_titles=[c[1] for c in COMPARED])
    names = [html.escape(r["candidate_name"] or r["session_id"]) for r in rows]
    palette = [COLORS["tokens"], COLORS["ai"], COLORS["active"], COLORS["action"], COLORS["user"]]
    for col, (key, _, scale) in enumerate(COMPARED, start=1):
        values = [None if r[key] is None else round(r[key] * scale, 1) for r in rows]
        fig.add_bar(
            x=names,
            y=values,
            row=1,
            col=col,
            showlegend=False,
            text=values,
            textposition="outside",
            cliponaxis=False,
            marker_color=[palette[i % len(palette)] for i in range(len(rows))],
        )
    title = html.escape(str(rows[0]["challenge_title"] or rows[0]["challenge_id"]))
    return styled(fig, f"Candidates on {title}", margin={"l": 50, "r": 20, "t": 90, "b": 50})


