"""Plain helpers shared by tests (a module with a unique name: `conftest` is ambiguous
once a sub-folder has its own conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
# Debian's Chromium, never a downloaded browser; flags that keep it off the network.
CHROMIUM = os.environ.get("IB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
INTERVIEWER_TOKEN = "interviewer-secret-token"
PROVIDER_KEY = "sk-test-provider-key-never-leaks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what: str, within: float = 30.0, every: float = 0.05):
    """Poll `condition` until it returns something truthy, and return that.

    Waiting on a condition another process will reach, never a sleep for time to pass."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        time.sleep(every)


async def wait_for_async(condition, what: str, within: float = 60.0, every: float = 0.01):
    """`wait_for` inside a test's event loop, which must keep running (the service under
    test shares it): polls `condition` until it is truthy."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)


def wait_until_up(url: str, proc: subprocess.Popen, headers: dict | None = None,
                  within: float = 240.0) -> None:
    """Poll `url` until it answers; fail at once if `proc` exits first. The cap is generous:
    a server's start-up takes seconds on an idle machine and minutes on a loaded one."""

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} came up")
        try:
            return httpx.get(url, headers=headers, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(answers, url, within, every=0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()



def session_body(**overrides):
    body = {"candidate_name": "Ada Lovelace", "candidate_email": "ada@example.com",
            "time_limit_seconds": 3600, "token_budget": 5000,
            "challenge_title": "FizzBuzz", "challenge_text": "Write fizzbuzz(n)."}
    body.update(overrides)
    return body



def candidate_client(base_url: str, token: str, **kw):
    import openai

    return openai.AsyncOpenAI(base_url=base_url + "/ib/v1", api_key=token, max_retries=0, **kw)


# ---- grading -----------------------------------------------------------------------
# A spy cell reports by raising `Report(json)`: a cell's error message is the one channel
# graded code has back to the candidate.
SPY = "import json, os\nclass Report(Exception):\n    pass\n"


def graded_notebook(*cells) -> dict:
    """A submitted notebook: strings are code cells; (source, tags) pairs are tagged cells."""
    import json

    import nbformat

    built = [nbformat.v4.new_markdown_cell("# My solution")]
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        built.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=built)))


def reported(result: dict, cell: int) -> dict:
    """What spy cell number `cell` reported (see SPY)."""
    import json

    message = next(e["message"] for e in result["cell_errors"] if e["cell"] == cell)
    assert message.startswith("Report: "), message
    return json.loads(message.removeprefix("Report: "))
