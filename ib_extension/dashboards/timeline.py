"""One session's event timeline (filterable by kind) and its latest notebook snapshot."""

from __future__ import annotations

import json

import ipywidgets as w

from . import fmt

# Filter label -> type prefixes it shows (None: everything).
CATEGORIES: dict[str, tuple[str, ...] | None] = {
    "All events": None,
    "Lifecycle": ("session.",),
    "Time & tokens": ("time.", "tokens.", "warning"),
    "Flags": ("refusal", "injection.", "activity.paste", "provider.error", "chat.cut"),
    "AI chat": ("chat.", "provider."),
    "Candidate activity": ("activity.",),
    "Grading": ("grade.",),
    "Link & workspace": ("link.", "workspace."),
}
SHOWN = 300  # newest events drawn; older ones stay in the API
# Events that carry the candidate's notebook (workspace.closed: captured at the end).
NOTEBOOK_EVENTS = ("activity.snapshot", "session.submitted", "workspace.closed")
FLAGGED = ("refusal", "injection.suspected", "activity.paste", "provider.error", "chat.cut",
           "warning", "link.refused")


def in_category(event_type: str, category: str) -> bool:
    prefixes = CATEGORIES[category]
    return prefixes is None or event_type.startswith(prefixes)


def describe(event: dict) -> str:
    """A short plain-text line for an event's payload."""
    p, t = event.get("payload") or {}, event["type"]
    if t == "session.created":
        return (f"{fmt.minutes(p.get('time_limit_seconds'))}, "
                f"{p.get('token_budget', 0):,} tokens, {p.get('model')}, "
                f"policy {p.get('assist_policy')}")
    if t == "time.extended":
        return f"+{fmt.minutes(p.get('seconds'))}"
    if t == "tokens.extended":
        return f"+{p.get('tokens', 0):,} tokens"
    if t == "warning":
        return f"{p.get('kind')}: {p.get('threshold')} % left"
    if t == "refusal":
        return f"{p.get('code')}: {p.get('message')}"
    if t == "injection.suspected":
        return f"{p.get('pattern')}: “{p.get('excerpt')}”"
    if t == "chat.completed":
        return (f"{p.get('prompt_tokens')} prompt + {p.get('completion_tokens')} completion tokens, "
                f"{(p.get('latency_ms') or 0) / 1000:.1f} s")
    if t in ("activity.snapshot", "session.submitted"):
        return f"notebook saved{' (' + str(p['path']) + ')' if p.get('path') else ''}"
    if t == "activity.paste":
        return f"pasted {p.get('chars', '?')} characters"
    if t == "link.issued":
        return "a new link (the earlier one stopped working)" if p.get("reissued") else "link made"
    if t == "link.opened":
        return "the candidate opened the link"
    if t == "link.refused":
        return f"a browser was refused: {p.get('reason')}"
    if t == "workspace.closed":
        got = ("notebook captured" if p.get("notebook") else f"no notebook: {p.get('problem')}")
        return f"{got}; server {'stopped' if p.get('server_stopped') else 'not stopped'}"
    if t == "workspace.removed":
        return f"workspace {p.get('hub_user')} removed"
    if not p:
        return ""
    text = json.dumps(p, ensure_ascii=False)
    return text if len(text) <= 160 else text[:159] + "…"


def event_row(event: dict) -> str:
    at = fmt.parse_time(event.get("at"))
    flagged = " ib-ev-flag" if event["type"] in FLAGGED else ""
    return (f'<div class="ib-ev{flagged}">'
            f'<span class="ib-ev-time">{at.strftime("%H:%M:%S") if at else ""}</span>'
            f'<span class="ib-ev-type">{fmt.esc(event["type"])}</span>'
            f'<span class="ib-ev-actor">{fmt.esc(event.get("actor"))}</span>'
            f'<span class="ib-ev-text">{fmt.esc(describe(event))}</span></div>')


class Timeline:
    def __init__(self):
        self.events: dict[int, dict] = {}
        self.filter = w.Dropdown(options=list(CATEGORIES), value="All events",
                                 layout=w.Layout(width="190px"))
        self.filter.add_class("ib-ev-filter")
        self.filter.observe(lambda _: self.draw(), "value")
        self.list = w.HTML()
        self.list.add_class("ib-ev-list")
        self.widget = w.VBox([self.filter, self.list])
        self.widget.add_class("ib-timeline")

    def show(self, events: list[dict]) -> None:
        self.events = {e["id"]: e for e in events}
        self.draw()

    def add(self, event: dict) -> None:
        self.events[event["id"]] = event
        self.draw()

    def draw(self) -> None:
        chosen = [e for e in sorted(self.events.values(), key=lambda e: e["id"], reverse=True)
                  if in_category(e["type"], self.filter.value)][:SHOWN]
        self.list.value = ("".join(event_row(e) for e in chosen)
                           or '<div class="ib-muted">No events of this kind yet.</div>')

    def latest_notebook(self) -> tuple[dict, dict] | None:
        """(event, notebook) of the newest snapshot, submission or capture with one."""
        for e in sorted(self.events.values(), key=lambda e: e["id"], reverse=True):
            nb = (e.get("payload") or {}).get("notebook")
            if e["type"] in NOTEBOOK_EVENTS and isinstance(nb, dict):
                return e, nb
        return None


def notebook_html(event: dict, notebook: dict) -> str:
    """The snapshot's cells as inert text: code in <pre>, markdown as its source."""
    at = fmt.parse_time(event.get("at"))
    path = (event.get("payload") or {}).get("path")
    head = (f'<div class="ib-snap-head">Saved {at.strftime("%H:%M:%S") if at else ""}'
            f'{" · " + fmt.esc(path) if path else ""}</div>')
    cells = []
    for cell in notebook.get("cells") or []:
        source = cell.get("source") or ""
        source = "".join(source) if isinstance(source, list) else str(source)
        kind = "code" if cell.get("cell_type") == "code" else "md"
        cells.append(f'<pre class="ib-snap-{kind}">{fmt.esc(source)}</pre>')
    return head + ("".join(cells) or '<div class="ib-muted">The notebook is empty.</div>')
