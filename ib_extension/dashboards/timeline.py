"""One session's event timeline (filterable by kind) and its latest notebook snapshot."""

from __future__ import annotations

import ipywidgets as w

from ..api.events import CATALOGUE, CATEGORY_NAMES, NOTEBOOK_EVENTS
from ..api.events import describe as catalogue_sentence
from . import fmt

ALL_EVENTS = "All events"
SHOWN = 300  # newest events drawn; older ones stay in the API


def in_category(event_type: str, category: str) -> bool:
    """`category` is ALL_EVENTS or a catalogue category's name."""
    if category == ALL_EVENTS:
        return True
    entry = CATALOGUE.get(event_type)
    return entry is not None and CATEGORY_NAMES[entry.category] == category


def describe(event: dict) -> str:
    """The catalogue's sentence for the event (the same on every page and in exports)."""
    return catalogue_sentence(event)


def event_row(event: dict) -> str:
    at = fmt.parse_time(event.get("at"))
    entry = CATALOGUE.get(event["type"])
    flagged = " ib-ev-flag" if entry and entry.flagged else ""
    return (f'<div class="ib-ev{flagged}">'
            f'<span class="ib-ev-time">{at.strftime("%H:%M:%S") if at else ""}</span>'
            f'<span class="ib-ev-type">{fmt.esc(event["type"])}</span>'
            f'<span class="ib-ev-actor">{fmt.esc(event.get("actor"))}</span>'
            f'<span class="ib-ev-text">{fmt.esc(describe(event))}</span></div>')


class Timeline:
    def __init__(self):
        self.events: dict[int, dict] = {}
        self.filter = w.Dropdown(options=[ALL_EVENTS, *CATEGORY_NAMES.values()], value=ALL_EVENTS,
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
