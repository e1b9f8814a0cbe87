"""`pytest --nbval-lax` runs each dashboard notebook against a live service with sessions.

The notebooks' kernels find the service through IB_URL/IB_TOKEN (as under `ib serve`);
IB_DASHBOARDS_STRICT=1 makes a page that cannot read the service fail its cell instead
of showing the problem as a sentence, so a broken page fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import openai
from helpers import REPO
from live import start_service, stop_service

NOTEBOOKS = ["monitor.ipynb", "create.ipynb", "analytics.ipynb"]


def test_dashboard_notebooks_run_against_a_live_service(fake_llm_url, tmp_path):
    live = start_service(fake_llm_url, tmp_path / "data")
    try:
        active = live.create_session(candidate_name="Notebook Candidate")
        openai.OpenAI(base_url=live.url + "/ib/v1", api_key=active["candidate_token"],
                      max_retries=0).chat.completions.create(
            model=active["session"]["model"],
            messages=[{"role": "user", "content": "hi [[reply:hello]]"}])
        live.client.action(active["id"], "end")
        live.create_session(candidate_name="Not Started")
        env = dict(os.environ, IB_URL=live.url, IB_TOKEN=live.token, IB_DASHBOARDS_STRICT="1")
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
             "--rootdir", str(REPO), *[str(REPO / "notebooks" / "dashboards" / nb) for nb in NOTEBOOKS]],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    finally:
        stop_service(live)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{len(NOTEBOOKS)} passed" in run.stdout
