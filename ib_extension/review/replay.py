"""One session as a single time-ordered timeline, for the step-through replay.

Pure functions over a session record (``{"session", "messages", "events",
"final_notebook", "grade", "challenge"}``, docs/API.md): nothing here talks to the
service or draws anything. The replay dashboard (``dashboards_history.ReplayPage``)
renders the steps; the text in them is untrusted and escaped there.

A step interleaves, by the service's timestamps (never the candidate's own clock):
- the conversation: a question when it was sent, a reply when it finished;
- candidate activity: cell runs, notebook snapshots (with the diff of their code cells
  from the previous snapshot), copies from the AI panel, large pastes;
- interviewer actions (start, pause, extend...) and the service's own events
  (warnings, refusals, grading).

Each step also carries the state so far: tokens used, messages exchanged, the
session's status and lock at that moment.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from ..api.events import CATALOGUE, NOTEBOOK_EVENTS, describe
from .records import SessionClock, billed, billed_total, check_record, parse_time

# Events the timeline leaves out: the message steps already carry what they say.
FOLDED = {t for t, k in CATALOGUE.items() if k.with_message}


@dataclass(frozen=True)
class CellDiff:
    """How one code cell changed between two snapshots."""

    cell: str  # the cell's id, else "#<position>" (1-based)
    change: str  # "added", "removed" or "changed"
    lines: tuple[str, ...]  # unified-diff lines: "@@ ...", " kept", "+added", "-removed"

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.startswith("+"))

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.startswith("-"))


@dataclass(frozen=True)
class Step:
    index: int
    at: str  # ISO 8601 UTC, as the service logged it
    t: float  # seconds since the session started (or since the first step)
    kind: str  # question, answer, cell, snapshot, submit, copy, paste, interviewer, system
    actor: str  # candidate, ai, interviewer, system
    title: str
    detail: dict[str, Any] = field(default_factory=dict)
    # the state once this step has happened
    tokens: int = 0  # billed so far, as the ledger counts them
    messages: int = 0
    status: str = "created"
    locked: bool = False
    time_used: float = 0.0  # of the time limit, by the service's clock


# -- snapshots --------------------------------------------------------------------------


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def code_cells(notebook: dict | None) -> list[tuple[str, str]]:
    """(key, source) of each code cell; the key is the cell's id when it has one (ids
    survive moves and insertions), else its position."""
    cells = (notebook or {}).get("cells") or []
    return [(str(c.get("id") or f"#{i + 1}"), _source(c))
            for i, c in enumerate(cells) if c.get("cell_type") == "code"]


def snapshot_diff(before: dict | None, after: dict | None, context: int = 2) -> list[CellDiff]:
    """The code cells that differ between two notebooks, in the order of ``after`` (cells
    that disappeared last). ``before=None`` is an empty notebook: every cell is added."""
    old, new = dict(code_cells(before)), code_cells(after)
    diffs = []
    for key, source in new:
        if key not in old:
            diffs.append(CellDiff(key, "added", tuple("+" + line for line in source.splitlines())))
        elif old[key] != source:
            body = difflib.unified_diff(old[key].splitlines(), source.splitlines(),
                                        n=context, lineterm="")
            diffs.append(CellDiff(key, "changed", tuple(list(body)[2:])))  # drop ---/+++
    kept = {key for key, _ in new}
    for key, source in old.items():
        if key not in kept:
            diffs.append(CellDiff(key, "removed", tuple("-" + line for line in source.splitlines())))
    return diffs


def diff_summary(diffs: list[CellDiff]) -> str:
    if not diffs:
        return "no change to the code"
    cells = len(diffs)
    return (f"+{sum(d.added for d in diffs)} −{sum(d.removed for d in diffs)} lines "
            f"in {cells} code cell{'s' * (cells != 1)}")


# -- the timeline -----------------------------------------------------------------------


def timeline(record) -> list[Step]:
    """Every message and event of ``record`` as steps in time order."""
    check_record(record)
    # (stamp, rank, n, source, item): at one instant, events come first, then questions,
    # then replies; ties within a kind keep the service's order.
    entries = [(e["at"], 0, e.get("id") or 0, "event", e)
               for e in record.get("events") or [] if e["type"] not in FOLDED]
    for n, m in enumerate(record.get("messages") or []):
        if m["role"] == "user":
            entries.append((m["created_at"], 1, n, "message", m))
        else:  # a reply counts from when it was complete
            entries.append((m.get("finished_at") or m["created_at"], 2, n, "message", m))
    entries.sort(key=lambda x: (parse_time(x[0]), x[1], x[2]))
    if not entries:
        return []

    start = parse_time(record["session"].get("started_at") or entries[0][0])
    clock = SessionClock(record)
    state = {"tokens": 0, "messages": 0, "status": "created", "locked": False}
    last_notebook: dict | None = None
    steps = []
    for at, _, _, source, item in entries:
        if source == "message":
            state["tokens"] += billed_total(item)
            state["messages"] += 1
            kind, actor, title, detail = _message(item)
        else:
            notebook = _notebook(item, record)
            kind, actor, title, detail = _event(item, notebook, last_notebook)
            _advance(state, item)
            if isinstance(notebook, dict):
                last_notebook = notebook
        steps.append(Step(index=len(steps), at=at, t=(parse_time(at) - start).total_seconds(),
                          kind=kind, actor=actor, title=title, detail=detail,
                          time_used=round(clock.used_at(at), 3), **state))
    return steps


def _advance(state: dict, event: dict) -> None:
    """Lifecycle events say where they led (the service's rules, not a copy of them)."""
    payload = event.get("payload") or {}
    if event["type"].startswith("session.") and "status" in payload:
        state["status"] = payload["status"]
    if "locked" in payload:
        state["locked"] = payload["locked"]


def _message(m: dict) -> tuple[str, str, str, dict]:
    detail = {"message_id": m["id"], "content": m.get("content") or "",
              "status": m.get("status"), "tokens": billed_total(m)}
    if m["role"] == "user":
        return "question", "candidate", "Candidate asked the AI", detail
    prompt, completion = billed(m)
    detail.update(latency_ms=m.get("latency_ms"), model=m.get("model"),
                  prompt_tokens=prompt, completion_tokens=completion)
    title = "AI replied" if m.get("status") in (None, "complete") else f"AI reply ({m['status']})"
    return "answer", "ai", title, detail


def _notebook(e: dict, record: dict) -> dict | None:
    """The notebook a snapshot, the submission or the end-of-interview capture carries.
    The service keeps the submitted one as the record's ``final_notebook``, not in the
    event."""
    if e["type"] not in NOTEBOOK_EVENTS:
        return None
    notebook = (e.get("payload") or {}).get("notebook")
    if not isinstance(notebook, dict) and e["type"] == "session.submitted":
        notebook = record.get("final_notebook")
    return notebook if isinstance(notebook, dict) else None


def _event(e: dict, notebook: dict | None,
           last_notebook: dict | None) -> tuple[str, str, str, dict]:
    """(kind, actor, title, detail) of one event; ``notebook`` is the one it carries.
    The title is the catalogue's sentence, the same on every page and in exports."""
    t, p = e["type"], e.get("payload") or {}
    actor = e.get("actor") or "system"
    title = describe(e)
    if t == "activity.cell_executed":
        return "cell", "candidate", title, _cell_detail(p)
    if t in NOTEBOOK_EVENTS:
        kind = "submit" if t == "session.submitted" else "snapshot"
        actor = "system" if t == "workspace.closed" else "candidate"
        if notebook is None:
            return kind, actor, title, {
                "diff": [], "summary": "this snapshot carried no notebook"}
        diffs = snapshot_diff(last_notebook, notebook)
        return kind, actor, title, {
            "diff": diffs, "summary": diff_summary(diffs), "first": last_notebook is None,
            "cells": len(code_cells(notebook)), "path": p.get("path")}
    if t == "activity.copy":
        return "copy", "candidate", title, {
            "message_id": p.get("message_id"), "lines": p.get("lines"), "chars": p.get("chars"),
            "language": p.get("language")}
    if t == "activity.paste":
        return "paste", "candidate", title, {
            "cell_id": p.get("cell_id"), "lines": p.get("lines"), "chars": p.get("chars")}
    if t.startswith("activity."):
        return "activity", "candidate", title, dict(p)
    if actor == "interviewer":
        return "interviewer", "interviewer", title, {}
    return "system", actor, title, {}


def _cell_detail(p: dict) -> dict:
    detail = {k: p.get(k) for k in ("cell_id", "execution_count", "duration_ms", "error",
                                    "error_name", "lines", "chars")}
    if "source" in p:
        detail["source"] = str(p["source"])
    else:  # too big to send: the workspace reported its hash and size only
        detail["source"] = None
        detail["sha256"] = p.get("sha256")
    return detail


# -- stepping ---------------------------------------------------------------------------


class Stepper:
    """A position in a timeline of ``count`` steps; every move stays in range."""

    def __init__(self, count: int, index: int = 0):
        if count < 0:
            raise ValueError(f"a timeline has 0 or more steps, not {count}")
        self.count = count
        self.index = 0
        self.go(index)

    def go(self, index: int) -> int:
        self.index = min(max(0, index), max(0, self.count - 1))
        return self.index

    def forward(self) -> int:
        return self.go(self.index + 1)

    def back(self) -> int:
        return self.go(self.index - 1)

    def first(self) -> int:
        return self.go(0)

    def last(self) -> int:
        return self.go(self.count - 1)

    @property
    def at_start(self) -> bool:
        return self.index == 0

    @property
    def at_end(self) -> bool:
        return self.index >= self.count - 1
