"""The benchmarks still run against the code they measure. scale.py builds its file with
the store's own schema and encoding, so a change there can break it without any test of
the service noticing; a tiny run here catches that (the numbers are not looked at)."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
from helpers import REPO


def test_scale_builds_its_files_and_measures_every_read(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--sessions", "12",
         "--messages", "240", "--small-sessions", "4", "--runs", "1", "--export-runs", "0",
         "--keep", str(tmp_path / "big.duckdb")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "big file: 12 sessions, 240 messages" in out.stdout
    for read in ("start-up (to /health)", "session list", "messages, biggest",
                 "history search", "feed poll", "record, biggest",
                 "write batch of 20 chat turns (CPU)"):
        assert f"\n{read} " in out.stdout, (read, out.stdout)


def test_overhead_carries_a_conversation_made_through_the_service(tmp_path):
    """overhead.py --history-tokens: the conversation is made through ib, so its replies
    are the service's own and no turn is flagged; every path gets it before its question."""
    numbers = tmp_path / "long.json"
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "overhead.py"), "--history-tokens", "12000",
         "--runs", "2", "--warmup", "0", "--no-litellm", "--json", str(numbers),
         "--logs", str(tmp_path / "logs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(numbers.read_text())
    assert data["history_tokens"] >= 12000
    assert data["estimate_ms"]["turn p50"] > 0
    assert data["rows"]["streamed TTFT p50"]["ib added"] is not None
    assert data["rows"]["streamed TTFT p50"]["relay added"] is not None  # the bare relay ran
    store = duckdb.connect(str(next((tmp_path / "logs").glob("data-*/*.duckdb"))),
                           read_only=True)
    flagged = store.execute("SELECT count(*) FROM events WHERE type = 'chat.flagged_message'")
    assert flagged.fetchone()[0] == 0
    # The conversation's turns, then 2 x 2 requests, each a new question after all of them.
    questions = store.execute("SELECT content FROM messages WHERE role = 'user' ORDER BY seq")
    asked = [q for (q,) in questions.fetchall()]
    measured = [q for q in asked if " (question " in q]
    assert len(measured) == 4 and asked[-4:] == measured
    assert len(set(asked)) == len(asked)
