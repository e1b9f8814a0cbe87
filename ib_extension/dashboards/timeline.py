"""One session's events as sentences (the catalogue's, as the replay and exports say
them), newest first, filterable by category."""

from __future__ import annotations

import ipywidgets as w

from ..api.events import CATALOGUE, CATEGORY_NAMES
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
    category = CATEGORY_NAMES[entry.category] if entry else ""
    return (f'<div class="ib-ev{flagged}" data-type="{fmt.esc(event["type"])}">'
            f'<span class="ib-ev-time">{at.strftime("%H:%M:%S") if at else ""}</span>'
            f'<span class="ib-ev-text">{fmt.esc(describe(event))}</span>'
            f'<span class="ib-ev-actor">{fmt.esc(event.get("actor"))}</span>'
            f'<span class="ib-ev-kind">{fmt.esc(category)}</span></div>')


class Timeline:
    def __init__(self):
        self.events: dict[int, dict] = {}
        self.filter = w.Dropdown(options=[ALL_EVENTS, *CATEGORY_NAMES.values()], value=ALL_EVENTS,
                                 description="Show", layout=w.Layout(width="240px"),
                                 style={"description_width": "40px"})
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
