"""Kernel-side activity telemetry (ib_extension.candidate.telemetry) with IPython's callbacks faked
and the clocks injected."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from ib_extension.candidate import telemetry


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def run():
    """run(source, cell_id, seconds=..., error=...) -> the events one cell run sends."""
    sent: list[tuple[str, dict]] = []
    mono, wall = Clock(100.0), Clock(1_800_000_000.0)
    tracker = telemetry.CellTracker(lambda t, p: sent.append((t, p)), monotonic=mono, wallclock=wall)

    def run_cell(source: str, cell_id: str = "c1", seconds: float = 0.25, error=None):
        sent.clear()
        info = SimpleNamespace(raw_cell=source, cell_id=cell_id)
        tracker.pre_run_cell(info)
        mono.t += seconds
        wall.t += seconds
        tracker.post_run_cell(SimpleNamespace(info=info, execution_count=7,
                                              error_before_exec=None, error_in_exec=error))
        return list(sent)

    return run_cell


def test_a_cell_run_reports_when_how_long_and_what(run):
    [(kind, payload)] = run("x = 1\nprint(x)", seconds=1.5)
    assert kind == "activity.cell_executed"
    assert payload == {"cell_id": "c1", "execution_count": 7, "started_at": "2027-01-15T08:00:00.000Z",
                       "duration_ms": 1500, "error": False, "chars": 14, "lines": 2,
                       "source": "x = 1\nprint(x)"}


def test_errors_are_flagged_with_their_name(run):
    [(_, payload)] = run("1/0", error=ZeroDivisionError("division by zero"))
    assert payload["error"] is True and payload["error_name"] == "ZeroDivisionError"


def test_big_sources_are_sent_as_hash_and_size(run):
    source = "x = '" + "a" * telemetry.SOURCE_CAP + "'"
    [(_, payload)] = run(source)
    assert "source" not in payload
    assert payload["sha256"] == hashlib.sha256(source.encode()).hexdigest()
    assert payload["chars"] == len(source)


def test_a_cell_that_grows_by_many_lines_is_a_paste(run):
    small = "a = 1\n"
    assert [k for k, _ in run(small)] == ["activity.cell_executed"]
    grown = small + "b = 2\n" * telemetry.PASTE_LINES
    events = dict(run(grown))
    paste = events["activity.paste"]
    assert paste["lines_added"] == telemetry.PASTE_LINES
    assert paste["cell_id"] == "c1" and paste["sha256"] == hashlib.sha256(grown.encode()).hexdigest()
    # Running the same cell again is not a new paste.
    assert [k for k, _ in run(grown)] == ["activity.cell_executed"]


def test_typing_a_few_lines_is_not_a_paste(run):
    source = ""
    for _ in range(telemetry.PASTE_LINES + 5):
        source += "y += 1\n"
        assert [k for k, _ in run(source)] == ["activity.cell_executed"]


def test_enable_without_a_session_does_nothing(monkeypatch):
    monkeypatch.delenv("IB_SERVICE_URL", raising=False)
    monkeypatch.delenv("IB_SESSION_TOKEN", raising=False)
    events = SimpleNamespace(registered=[], register=lambda *a: events.registered.append(a))
    shell = SimpleNamespace(events=events)
    assert telemetry.enable(shell) is None
    assert events.registered == []


def test_enable_registers_once(monkeypatch):
    monkeypatch.setattr(telemetry, "BackgroundSender", lambda url, token: lambda *a: None)
    events = SimpleNamespace(registered=[], register=lambda *a: events.registered.append(a[0]))
    shell = SimpleNamespace(events=events)
    first = telemetry.enable(shell, service_url="http://svc", session_token="ibc_t")
    assert telemetry.enable(shell, service_url="http://svc", session_token="ibc_t") is first
    assert events.registered == ["pre_run_cell", "post_run_cell"]
