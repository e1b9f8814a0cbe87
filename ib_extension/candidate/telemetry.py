"""Activity telemetry from the candidate's kernel, for the reviewer's timeline.

- `activity.cell_executed` for every cell run: when, how long, the source (or its sha256
  and size above SOURCE_CAP characters), error or not;
- `activity.paste` when a cell grows by PASTE_LINES lines or more between two runs (or
  first runs with that many): the likely sign of a large paste.

Events go out from a background thread so a slow or absent service never delays a cell.
This runs in the candidate's own environment: a determined candidate can switch it off
or send anything. It is evidence, never a control; the service enforces budget, time and
session state on its own. Loaded by `show_panel()` and, in workspaces started by `ib lab`,
as an IPython extension (`%load_ext ib_extension.candidate.telemetry`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ib_extension.candidate.telemetry")

SOURCE_CAP = 20_000  # characters of cell source sent verbatim
PASTE_LINES = 15     # growth of a cell, in lines, between two runs that counts as a paste
QUEUE_MAX = 500      # events waiting to be sent; beyond this they are dropped

Send = Callable[[str, dict[str, Any]], None]


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def source_fields(source: str) -> dict[str, Any]:
    """The cell's source, or its hash and size when it is too big to send."""
    fields: dict[str, Any] = {"chars": len(source), "lines": source.count("\n") + 1 if source else 0}
    if len(source) <= SOURCE_CAP:
        fields["source"] = source
    else:
        fields["sha256"] = hashlib.sha256(source.encode()).hexdigest()
    return fields


class CellTracker:
    """Turns IPython's pre/post_run_cell callbacks into activity events."""

    def __init__(self, send: Send, *, monotonic: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time):
        self._send = send
        self._monotonic = monotonic
        self._wallclock = wallclock
        self._started: tuple[float, float] | None = None
        self._lines: dict[str, int] = {}  # cell id -> line count at its last run

    def pre_run_cell(self, info: Any) -> None:
        self._started = (self._wallclock(), self._monotonic())

    def post_run_cell(self, result: Any) -> None:
        info = result.info
        source = info.raw_cell or ""
        cell_id = getattr(info, "cell_id", None) or ""
        at, t0 = self._started or (self._wallclock(), self._monotonic())
        self._started = None
        error = result.error_before_exec or result.error_in_exec
        payload = {"cell_id": cell_id, "execution_count": result.execution_count,
                   "started_at": _iso(at), "duration_ms": round((self._monotonic() - t0) * 1000),
                   "error": error is not None, **source_fields(source)}
        if error is not None:
            payload["error_name"] = type(error).__name__
        self._send("activity.cell_executed", payload)
        self._check_paste(cell_id, source)

    def _check_paste(self, cell_id: str, source: str) -> None:
        if not cell_id:
            return
        lines = source.count("\n") + 1 if source.strip() else 0
        grown = lines - self._lines.get(cell_id, 0)
        self._lines[cell_id] = lines
        if grown >= PASTE_LINES:
            self._send("activity.paste", {"cell_id": cell_id, "lines_added": grown,
                                          "lines": lines, "chars": len(source),
                                          "sha256": hashlib.sha256(source.encode()).hexdigest()})


class BackgroundSender:
    """Posts events to the service from a daemon thread; failures are logged and dropped."""

    def __init__(self, service_url: str, session_token: str):
        from ..api.client import IBClient

        self._client = IBClient(service_url, session_token, scheme="bearer", timeout=10.0)
        self._queue: queue.Queue = queue.Queue(QUEUE_MAX)
        threading.Thread(target=self._run, name="ib-telemetry", daemon=True).start()

    def __call__(self, type_: str, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((type_, payload))
        except queue.Full:
            log.warning("telemetry queue full; dropped a %s event", type_)

    def _run(self) -> None:
        while True:
            type_, payload = self._queue.get()
            try:
                self._client.activity(type_, payload)
            except Exception as e:  # noqa: BLE001 (whatever happens, the thread must live)
                log.info("telemetry event %s not recorded: %s", type_, e)


def enable(ip: Any = None, *, service_url: str | None = None,
           session_token: str | None = None) -> CellTracker | None:
    """Start telemetry in this IPython kernel (idempotent). Returns None when the kernel has
    no session to report to."""
    if ip is None:
        from IPython import get_ipython

        ip = get_ipython()
    if ip is None:
        return None
    existing = getattr(ip, "_ib_cell_tracker", None)
    if existing is not None:
        return existing
    url = service_url or os.environ.get("IB_SERVICE_URL")
    token = session_token or os.environ.get("IB_SESSION_TOKEN")
    if not url or not token:
        return None
    tracker = CellTracker(BackgroundSender(url, token))
    ip.events.register("pre_run_cell", tracker.pre_run_cell)
    ip.events.register("post_run_cell", tracker.post_run_cell)
    ip._ib_cell_tracker = tracker
    return tracker


def load_ipython_extension(ip: Any) -> None:
    enable(ip)
