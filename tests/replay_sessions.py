"""Play whole interviews against a live service (tests/live.py), through its public API
only, so history, replay and export tests read what a real session leaves behind."""

from __future__ import annotations

import httpx
from session_records import code_cell, notebook

from ib_extension.api.client import IBClient

FIRST = notebook(code_cell("def fizzbuzz(n):\n    pass", id="solve"))
SECOND = notebook(
    code_cell("def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n    return str(n)",
              id="solve"),
    code_cell("print(fizzbuzz(15))", id="check"),
)
FINAL = notebook(
    code_cell("def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n"
              "    if n % 3 == 0:\n        return 'Fizz'\n    return str(n)", id="solve"),
    code_cell("print(fizzbuzz(15))", id="check"),
)
QUESTION = "How do I write fizzbuzz in Python? <script>alert(1)</script>"


def play(live, *, candidate: str = "Grace Hopper", submit: bool = True) -> dict:
    """One interview: a question to the demo model, two snapshots with cell runs between
    them, a copy and a paste, a pause and a time extension, then the submission.
    Returns ``{"id", "candidate_token"}``."""
    created = live.create_session(candidate_name=candidate)
    sid, token = created["id"], created["candidate_token"]
    interviewer = live.client
    interviewer.action(sid, "start")
    me = IBClient(live.url, token, scheme="bearer")
    try:
        me.activity("activity.snapshot", {"path": "solution.ipynb", "reason": "save",
                                          "notebook": FIRST})
        r = httpx.post(f"{live.url}/ib/v1/chat/completions", timeout=30,
                       headers={"Authorization": f"Bearer {token}"},
                       json={"model": created["session"]["model"],
                             "messages": [{"role": "user", "content": QUESTION}]})
        r.raise_for_status()
        me.activity("activity.copy", {"message_id": "m_x", "kind": "code", "language": "python",
                                      "chars": 40, "lines": 3})
        me.activity("activity.cell_executed", {"cell_id": "solve", "execution_count": 1,
                                               "duration_ms": 4, "error": False,
                                               "source": SECOND["cells"][0]["source"]})
        interviewer.action(sid, "pause")
        interviewer.action(sid, "resume")
        interviewer.extend_time(sid, 300)
        me.activity("activity.paste", {"cell_id": "solve", "lines_added": 16, "lines": 20,
                                       "chars": 400})
        me.activity("activity.snapshot", {"path": "solution.ipynb", "reason": "save",
                                          "notebook": SECOND})
        if submit:
            me.submit(FINAL)
    finally:
        me.close()
    return {"id": sid, "candidate_token": token}
