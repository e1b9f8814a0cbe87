"""`pytest --nbval-lax` runs the candidate template (and the panel's Python API notebook)
in a real kernel against a live service and the offline demo model; the kernel, started with
the workspace's IPython profile as the candidate's server starts it, reports every cell it
ran (the template has no cell to run for that)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import nbformat
from helpers import wait_for
from live import start_service, stop_service

from ib_extension.api.resources import candidate_template
from ib_extension.candidate import workdir

HERE = Path(__file__).parent
NOTEBOOKS = [candidate_template(), HERE / "nb" / "panel_api.ipynb"]


def run_nbval(notebook: Path, session: dict, url: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "IB_"))}
    profile = workdir.ipython_dir(tmp) / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(workdir.KERNEL_CONFIG, encoding="utf-8")
    env.update(IB_SERVICE_URL=url, IB_SESSION_TOKEN=session["candidate_token"],
               IPYTHONDIR=str(workdir.ipython_dir(tmp)))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp), "-c", os.devnull, str(notebook)],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=180)


def code_cells(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_notebooks_run_against_a_live_service(fake_llm_url, tmp_path):
    live = start_service(fake_llm_url, tmp_path / "data")
    try:
        for notebook in NOTEBOOKS:
            created = live.create_session()
            r = run_nbval(notebook, created, live.url, tmp_path)
            assert r.returncode == 0, f"{notebook.name}:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"

            # Telemetry from the real kernel: one event per code cell that ran, in order.
            expected = code_cells(notebook)
            events = wait_for(functools.partial(reported, live, created["id"], len(expected)),
                              "one cell_executed event per code cell", 20.0)
            assert [e["payload"]["source"] for e in events] == expected
            assert not any(e["payload"]["error"] for e in events)
    finally:
        stop_service(live)


def reported(live, session_id: str, count: int) -> list | None:
    """The session's cell_executed events, once there are at least `count` of them."""
    found = live.client.events(session_id, "activity.cell_executed")["events"]
    return found if len(found) >= count else None
