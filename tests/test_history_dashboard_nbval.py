"""notebooks/dashboards/history.ipynb and replay.ipynb run top to bottom (nbval, lax:
outputs are widgets, not compared) in a kernel that knows a live service with a played
session. IB_DASHBOARDS_STRICT makes a page that cannot read the service fail its cell
instead of showing the problem as a sentence."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO
from replay_sessions import play

NOTEBOOKS = [REPO / "notebooks" / "dashboards" / "history.ipynb",
             REPO / "notebooks" / "dashboards" / "replay.ipynb"]


@pytest.fixture(scope="module")
def live(live):
    live.played = [play(live)]
    return live


def nbval(live, tmp_path, query: str, notebooks=NOTEBOOKS) -> subprocess.CompletedProcess:
    env = {**os.environ, "IB_URL": live.url, "IB_TOKEN": live.token, "QUERY_STRING": query,
           "IB_DASHBOARDS_STRICT": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), *map(str, notebooks)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def test_the_dashboards_run_against_the_service(live, tmp_path):
    done = nbval(live, tmp_path, f"session_id={live.played[0]['id']}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_a_replay_of_an_unknown_session_fails_in_strict_mode(live, tmp_path):
    """The check above can fail: the replay notebook's cell raises for a bad session."""
    done = nbval(live, tmp_path, "session_id=s_000000000000", NOTEBOOKS[1:])  # well-formed, unknown
    assert done.returncode != 0
    assert "1 failed" in done.stdout
    assert "s_000000000000" in done.stdout
