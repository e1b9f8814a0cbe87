"""A hostile candidate with only their token and the API, against a real `ib serve` that
holds a provider key, an interviewer token and a hub token, grades submissions (in its
sandbox) and serves another candidate at the same time.

- Through grading: a submitted notebook reads every secret and file of the service it
  can name, and hands what it read back through every channel a candidate sees (cell
  errors, the visible tests' failure messages). None of it comes back: not in
  GET /ib/api/me, not in the events, not in the exports.
- By flooding: memory (100 MB bodies), disk (activity past the quota) and the feed;
  each attempt is refused or contained, nothing already logged is lost, and the other
  candidate keeps working.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import openai
import pytest
from helpers import REPO, wait_for
from live import start_service, stop_service

from ib_extension.api.challenges import load_library

PROVIDER_KEY = "sk-hostile-suite-" + secrets.token_hex(8)
HUB_TOKEN = "hub-hostile-suite-" + secrets.token_hex(8)
INTERVIEWER = "interviewer-hostile-suite-" + secrets.token_hex(8)
OTHER_MESSAGE = "other-candidates-question-" + secrets.token_hex(4)
MERGE = load_library([REPO / "challenges"]).get("merge-intervals")


@pytest.fixture(scope="module")
def service(fake_llm_url, tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile") / "data"
    live = start_service(fake_llm_url, data, token=INTERVIEWER,
                         extra_env={"OPENAI_API_KEY": PROVIDER_KEY, "JUPYTERHUB_API_TOKEN": HUB_TOKEN})
    yield live
    stop_service(live)


@pytest.fixture(scope="module")
def other(service):
    """Another candidate, mid-interview, with a question already logged."""
    created = service.create_session(candidate_name="Other Candidate")
    client = openai.OpenAI(base_url=f"{service.url}/ib/v1", api_key=created["candidate_token"],
                           max_retries=0)
    client.chat.completions.create(model=created["session"]["model"],
                                   messages=[{"role": "user", "content": OTHER_MESSAGE}])
    return created | {"openai": client}


def every_secret(service, other) -> dict[str, str]:
    return {"provider key": PROVIDER_KEY, "hub token": HUB_TOKEN, "interviewer token": INTERVIEWER,
            "other candidate's token": other["candidate_token"],
            "other candidate's message": OTHER_MESSAGE,
            "a hidden test": MERGE.hidden_tests.strip().splitlines()[1].strip()}


def thief_notebook(service) -> dict:
    """Reads everything it can name; answers with it where a candidate can see answers."""
    targets = ["/proc/1/environ", "/proc/self/environ", str(service.data_dir),
               str(service.data_dir / "ib.duckdb"), str(service.data_dir / "secrets"),
               str(service.data_dir / "secrets" / "llm_api_key"),
               str(service.data_dir / "secrets" / "interviewer_token"),
               "/root/.local/share/jupyter/runtime", "/root", str(REPO / "challenges"),
               str(REPO / "challenges" / "merge-intervals.md"), "/tmp", "/etc/passwd"]
    steal = (
        "import os\n"
        f"loot = {{}}\nfor path in {targets!r} + [f'/proc/{{p}}/environ' for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        loot[path] = (repr(os.listdir(path)) if os.path.isdir(path)\n"
        "                      else open(path, 'rb').read(4000).decode(errors='replace'))\n"
        "    except OSError as e:\n"
        "        loot[path] = type(e).__name__\n"
        "found = {p: v for p, v in loot.items() if v not in ('FileNotFoundError', 'PermissionError')}\n"
        "LOOT = repr(sorted(set(loot.values()) - set(found.values()))) + repr(found)\n"
        "def merge_intervals(intervals):\n"
        "    return LOOT  # every visible test's failure message quotes what this returns\n"
    )
    leak = "raise RuntimeError(LOOT[:450])"
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": steal, "outputs": [],
         "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": leak, "outputs": [],
         "execution_count": None}]}
    return nb


@pytest.fixture(scope="module")
def graded(service, other):
    """The thief's session after the service graded its submission."""
    created = service.create_session(candidate_name="Thief", challenge_id="merge-intervals",
                                     challenge_title=None, challenge_text=None)
    me = httpx.Client(base_url=service.url, timeout=60,
                      headers={"Authorization": f"Bearer {created['candidate_token']}"})
    r = me.post("/ib/api/me/submit", json={"notebook": thief_notebook(service)})
    assert r.status_code == 200, r.text
    seen = wait_for(lambda: (lambda s: s if s["grade"] else None)(me.get("/ib/api/me").json()),
                    "the grading to finish", within=180)
    me.close()
    return created | {"me": seen}


def leaked(text: str, service, other, *, interviewer: bool = False) -> list[str]:
    """Which secrets `text` holds; the interviewer may read the answer key, no one else."""
    return [name for name, value in every_secret(service, other).items()
            if value in text and not (interviewer and name == "a hidden test")]


def test_grading_ran_the_thief_and_returned_what_it_was_allowed_to_see(graded):
    grade = graded["me"]["grade"]
    messages = json.dumps(grade["tests"]) + json.dumps(grade["cell_errors"])
    assert "FileNotFoundError" in messages  # the theft ran, and reported through the channel
    assert grade["hidden"]["total"] == len(MERGE.hidden_test_names)


def test_no_secret_comes_back_to_the_candidate(graded, service, other):
    assert leaked(json.dumps(graded["me"]), service, other) == []


def test_no_secret_reaches_the_events_or_the_exports(graded, service, other):
    from ib_extension.review import export

    record = service.client.record(graded["id"])
    assert leaked(json.dumps(record["events"]), service, other, interviewer=True) == []
    for fmt in ("md", "json", "html", "ipynb"):
        assert leaked(export.render(record, fmt), service, other, interviewer=True) == [], fmt


def test_a_flood_is_refused_and_contained(service, other):
    created = service.create_session(candidate_name="Flooder")
    flood = httpx.Client(base_url=service.url, timeout=60,
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    first = flood.post("/ib/api/me/events", json={"type": "activity.paste", "payload": {"n": 0}})
    assert first.status_code == 201
    start = service.client.feed()
    text = secrets.token_hex(2_400_000)  # 4.8 MB: under the 5 MB route limit
    codes = [flood.post("/ib/api/me/events", json={"type": "activity.snapshot", "payload": {
        "text": text}}).status_code for _ in range(14)]
    assert codes[:10] == [201] * 10 and set(codes[10:]) == {429}  # 50 MB, then refused
    anonymous = httpx.post(f"{service.url}/ib/api/me/events", content=b"x" * 6_000_000,
                           timeout=60)
    assert anonymous.status_code == 401
    page = service.client.feed(start["cursor"], epoch=start["epoch"], timeout=0)
    assert len(json.dumps(page)) < 200_000  # references, not 48 MB of payloads
    events = service.client.events(created["id"], "activity.*")["events"]
    assert [e["payload"] for e in events if e["type"] == "activity.paste"] == [{"n": 0}]
    # The other candidate keeps working, and what they had logged is still there.
    reply = other["openai"].chat.completions.create(
        model=other["session"]["model"], messages=[{"role": "user", "content": "Still there?"}])
    assert reply.choices[0].message.content
    logged = [m["content"] for m in service.client.messages(other["id"])["messages"]]
    assert OTHER_MESSAGE in logged and "Still there?" in logged
    flood.close()


def test_the_service_data_is_private_to_it(service):
    data = Path(service.data_dir)
    assert data.stat().st_mode & 0o077 == 0
    assert (data / "secrets").stat().st_mode & 0o777 == 0o700
