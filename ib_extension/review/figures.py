"""The analytics charts (plotly): imported only where charts are drawn."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .analytics import message_timeline, summary, time_utilisation, token_timeline
from .layout import label_rows

COLORS = {
    "tokens": "#3b5bdb",
    "budget": "#868e96",
    "action": "#c2410c",
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


LABEL_ROW_PX = 16
MIN_PLOT_PX = 560  # the narrowest a token chart is drawn: its labels are packed for it


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
        mode="markers",
        text=[r["label"] for r in actions],
        hovertemplate="%{x:.1f} min: %{text}<extra></extra>",
        marker={"symbol": "diamond", "size": 10, "color": COLORS["action"]},
    )
    # Labels go above the plot, each on the lowest row where it meets no other label.
    span = max(x[-1] if x else 0, 1.0)
    row_of = label_rows([_minutes(r["t"]) for r in actions], [r["label"] for r in actions],
                        MIN_PLOT_PX / span)
    rows_used = max(row_of, default=-1) + 1
    for r, row in zip(actions, row_of, strict=True):
        fig.add_annotation(x=_minutes(r["t"]), y=1, yref="paper", yanchor="bottom",
                           yshift=4 + row * LABEL_ROW_PX, text=html.escape(r["label"]),
                           showarrow=False, font={"size": 11, "color": COLORS["action"]})
        fig.add_shape(type="line", x0=_minutes(r["t"]), x1=_minutes(r["t"]), y0=0, y1=1,
                      yref="paper", line={"color": COLORS["action"], "width": 1, "dash": "dot"})
    top = 70 + rows_used * LABEL_ROW_PX
    plot_px = FIGURE_HEIGHT + rows_used * LABEL_ROW_PX - top - 50
    return styled(
        fig,
        f"Token usage — {_who(record)}",
        height=FIGURE_HEIGHT + rows_used * LABEL_ROW_PX,
        margin={"l": 60, "r": 20, "t": top, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "xanchor": "right", "x": 1,
                "y": 1 + (rows_used * LABEL_ROW_PX + 8) / plot_px},
        xaxis_title="minutes since start",
        yaxis_title="tokens",
        yaxis_rangemode="tozero",
        xaxis_range=[0, span],
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
        text=[html.escape(r["preview"]) for r in user],
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
            f"{r['prompt_tokens']} prompt + {r['completion_tokens']} completion tokens billed, "
            f"{r['latency_seconds']:.1f} s "
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
    ("time_used_seconds", "Minutes used", 1 / 60),
    ("ai_time_share", "AI time share (%)", 100),
    ("score", "Score (%)", 100),
)


def compare_label(row: dict) -> str:
    """A candidate on the comparison's axis: name and start date (two sessions of the
    same name stay apart: the bars are keyed by session id)."""
    when = (row.get("started_at") or row.get("created_at") or "")[:16].replace("T", " ")
    return f"{html.escape(row['candidate_name'] or row['session_id'])}<br>{when}"


def fig_compare(records: list[dict]) -> go.Figure:
    """Candidates who took the same challenge, side by side, one bar per session."""
    if not records:
        raise ValueError("fig_compare needs at least one session record")
    rows = [summary(r) for r in records]
    challenges = {r["challenge_id"] for r in rows}
    if len(challenges) > 1:
        raise ValueError(
            f"fig_compare compares one challenge; these records span {sorted(map(str, challenges))}"
        )
    fig = make_subplots(rows=1, cols=len(COMPARED), subplot_titles=[c[1] for c in COMPARED])
    ids = [r["session_id"] for r in rows]
    labels = [compare_label(r) for r in rows]
    palette = [COLORS["tokens"], COLORS["ai"], COLORS["active"], COLORS["action"], COLORS["user"]]
    for col, (key, _, scale) in enumerate(COMPARED, start=1):
        values = [None if r[key] is None else round(r[key] * scale, 1) for r in rows]
        fig.add_bar(
            x=ids,
            y=values,
            row=1,
            col=col,
            showlegend=False,
            text=values,
            textposition="outside",
            cliponaxis=False,
            customdata=labels,
            hovertemplate="%{customdata}: %{y}<extra></extra>",
            marker_color=[palette[i % len(palette)] for i in range(len(rows))],
        )
        fig.update_xaxes(tickvals=ids, ticktext=labels, row=1, col=col)
    title = html.escape(str(rows[0]["challenge_title"] or rows[0]["challenge_id"]))
    return styled(fig, f"Candidates on {title}", margin={"l": 50, "r": 20, "t": 90, "b": 80})
