"""'Run tests' in the candidate's kernel: the challenge's visible tests against the code the
candidate has run so far, with the grader's own runner (the same pass/fail rules and
failure messages as grading). Hidden tests stay on the service.

The workspace's front-end sends one line to the notebook's kernel,
`__import__("ib_extension.candidate.visible_tests", fromlist=["run"]).run(globals())`,
and reads the results from the display message it publishes.
"""

from __future__ import annotations

import os
from typing import Any

from ..api.client import IBClient
from ..api.environment import SERVICE_URL_ENV, SESSION_TOKEN_ENV
from ..grading.kernel import run_tests

MIME = "application/vnd.interview-buddy.visible-tests+json"
TIMEOUT_SECONDS = 10.0  # per test: a candidate's endless loop must not hold the kernel


def visible_tests() -> str:
    client = IBClient(os.environ[SERVICE_URL_ENV], os.environ[SESSION_TOKEN_ENV], scheme="bearer")
    try:
        return (client.me().get("challenge") or {}).get("visible_tests") or ""
    finally:
        client.close()


def results(namespace: dict[str, Any], source: str) -> dict[str, Any]:
    tests = [{k: r[k] for k in ("name", "passed", "message")}
             for r in run_tests(namespace, [("<visible tests>", source, True)], TIMEOUT_SECONDS)]
    return {"tests": tests, "passed": sum(t["passed"] for t in tests), "total": len(tests)}


def run(namespace: dict[str, Any]) -> None:
    """Run the visible tests in a copy of `namespace` (the candidate's names stay as they
    are) and publish the results for the front-end."""
    from IPython.display import publish_display_data

    publish_display_data({MIME: results(namespace, visible_tests()),
                          "text/plain": "Visible tests run (results in the interview panel)."})
