"""The candidate's code, live on the monitor: the notebook as its newest save has it
(the workspace autosaves every few seconds), code highlighted with what changed since the
save before marked, and beside it what the candidate did, newest first: saves with their
diff, cell runs with the code they ran. Kept current by the feed (monitor.py), whose big
payloads (a notebook) arrive as references and are read once here."""

from __future__ import annotations

import ipywidgets as w

from ..api.client import IBClientError
from ..api.events import NOTEBOOK_EVENTS, describe
from ..review.records import product_cell
from ..review.replay import code_cells, diff_summary, snapshot_diff
from . import code, fmt
from .live import spawn

SHOWN_ACTIVITY = 40  # newest saves and runs listed


def _source(cell: dict) -> str:
    source = cell.get("source") or ""
    return "".join(source) if isinstance(source, list) else str(source)


def _when(event: dict) -> str:
    at = fmt.parse_time(event.get("at"))
    return at.strftime("%H:%M:%S") if at else ""


def notebook_html(event: dict, notebook: dict, before: dict | None) -> str:
    """The notebook's cells: code highlighted, lines changed since `before` marked."""
    old = dict(code_cells(before)) if before is not None else None
    keys = dict((id(c), k) for c, (k, _) in zip(
        [c for c in notebook.get("cells") or [] if c.get("cell_type") == "code"],
        code_cells(notebook), strict=True))
    diffs = snapshot_diff(before, notebook) if before is not None else []
    path = (event.get("payload") or {}).get("path")
    head = (f'<div class="ib-live-head"><b>{fmt.esc(describe(event))}</b> at {_when(event)} '
            f'{" · " + fmt.esc(path) if path else ""}'
            f' · {fmt.esc(diff_summary(diffs) if before is not None else "first save")}'
            f'{" since the save before" if diffs else ""}</div>')
    cells = []
    for cell in notebook.get("cells") or []:
        source = _source(cell)
        if product_cell(cell):
            cells.append('<div class="ib-live-panel">Interview Buddy panel cell</div>')
        elif cell.get("cell_type") == "code":
            key = keys[id(cell)]
            changed = [] if old is None else code.changed_lines(old.get(key), source)
            count = cell.get("execution_count")
            cells.append(f'<div class="ib-live-cell{" ib-live-changed" if changed else ""}">'
                         f'<div class="ib-live-prompt">[{count if count is not None else " "}]'
                         f'</div>{code.highlight(source, changed)}</div>')
        elif source.strip():
            cells.append(f'<div class="ib-live-md">{fmt.esc(source)}</div>')
    return head + ("".join(cells) or '<div class="ib-muted">The notebook is empty.</div>')


def activity_html(entries: list[tuple[dict, dict | None, dict | None]]) -> str:
    """Saves (with their diff) and cell runs (with their code), newest first."""
    rows = []
    for event, notebook, before in entries:
        p = event.get("payload") or {}
        if event["type"] == "activity.cell_executed":
            body = (code.highlight(str(p["source"])) if p.get("source") is not None
                    else f'<div class="ib-muted">{p.get("chars") or "?"} characters (too big '
                         'to send)</div>')
            extra = f' · {p["duration_ms"]} ms' if p.get("duration_ms") is not None else ""
            flag = " ib-live-error" if p.get("error") else ""
            rows.append(f'<details class="ib-live-run{flag}"><summary>{_when(event)} · '
                        f'{fmt.esc(describe(event))}{extra}</summary>{body}</details>')
        else:
            diffs = snapshot_diff(before, notebook) if before is not None else []
            summary = diff_summary(diffs) if before is not None else "first save"
            rows.append(f'<details class="ib-live-save"{" open" if not rows else ""}><summary>'
                        f'{_when(event)} · {fmt.esc(describe(event))} · {fmt.esc(summary)}'
                        f'</summary>{code.diff_html(diffs) if before is not None else ""}'
                        f'</details>')
    return "".join(rows) or '<div class="ib-muted">Nothing yet: saves and cell runs appear here.</div>'


class LiveCode:
    def __init__(self, client):
        self.client = client
        self.session_id: str | None = None
        self.events: dict[int, dict] = {}  # saves (with their notebook) and runs, by id
        style = w.HTML(f"<style>{code.stylesheet()}</style>")
        style.layout.display = "none"
        self.current = w.HTML()
        self.current.add_class("ib-live-notebook")
        self.activity = w.HTML()
        self.activity.add_class("ib-live-activity")
        now = w.VBox([w.HTML('<h3 class="ib-h3">Code now</h3>'), self.current])
        now.add_class("ib-live-now")
        done = w.VBox([w.HTML('<h3 class="ib-h3">Saves and cell runs</h3>'), self.activity])
        done.add_class("ib-live-done")
        columns = w.HBox([now, done])
        columns.add_class("ib-live-columns")
        self.widget = w.VBox([style, w.HTML('<h2 class="ib-h2" id="ib-live-code">The '
                                            "candidate's code, live</h2>"), columns])
        self.widget.add_class("ib-live")

    def show(self, session_id: str, events: list[dict]) -> None:
        self.session_id, self.events = session_id, {}
        for e in events:
            self.keep(e)
        self.draw()

    def add(self, event: dict) -> None:
        """An event from the feed; a notebook that came as a reference is read first."""
        if event["type"] in NOTEBOOK_EVENTS and event.get("payload_url"):
            spawn(self._fetch(event))
        elif self.keep(event):
            self.draw()

    async def _fetch(self, event: dict) -> None:
        try:
            full = await self.client.event(event["session_id"], event["id"])
        except IBClientError:
            return
        if event["session_id"] == self.session_id and self.keep(full):
            self.draw()

    def keep(self, event: dict) -> bool:
        if event["type"] == "activity.cell_executed" or (
                event["type"] in NOTEBOOK_EVENTS
                and isinstance((event.get("payload") or {}).get("notebook"), dict)):
            self.events[event["id"]] = event
            return True
        return False

    def saves(self) -> list[dict]:
        return [e for e in self.ordered() if e["type"] in NOTEBOOK_EVENTS]

    def ordered(self) -> list[dict]:
        return [self.events[k] for k in sorted(self.events)]

    def draw(self) -> None:
        saves = self.saves()
        if saves:
            latest = saves[-1]
            before = saves[-2]["payload"]["notebook"] if len(saves) > 1 else None
            self.current.value = notebook_html(latest, latest["payload"]["notebook"], before)
        else:
            self.current.value = ('<div class="ib-muted">No save yet: the candidate\'s '
                                  'workspace saves the notebook every few seconds while they '
                                  'work.</div>')
        entries, last = [], None
        for e in self.ordered():
            if e["type"] in NOTEBOOK_EVENTS:
                notebook = e["payload"]["notebook"]
                entries.append((e, notebook, last))
                last = notebook
            else:
                entries.append((e, None, None))
        self.activity.value = activity_html(list(reversed(entries))[:SHOWN_ACTIVITY])
