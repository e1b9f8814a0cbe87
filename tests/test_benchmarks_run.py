"""The benchmarks still run against the code they measure. scale.py builds its file with
the store's own schema and encoding, so a change there can break it without any test of
the service noticing; a tiny run here catches that (the numbers are not looked at)."""

from __future__ import annotations

import subprocess
import sys

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
                 "history search", "feed poll", "record, biggest"):
        assert f"\n{read} " in out.stdout, (read, out.stdout)
