"""The whole interview on a real JupyterHub, in two headless Chromium browsers: the
interviewer signs in through the hub and creates a session; the candidate opens the one
link it gives, sees the challenge, chats through the panel (the reply streams); the
interviewer's monitor shows the message; the interviewer ends the interview; the
candidate's last, unsaved edit is in the export; the link then says the interview is over.

The hub runs as `make demo` runs it (`ib hub --demo`: the demo model as a hub service)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, REPO
from hub import IB_TOKEN, PASSWORD, start_hub, stop_hub, wait_closed
from playwright.sync_api import expect
from workspace_page import CLOCK, IDLE

from ib_extension.api import hub as contract
from ib_extension.candidate.panel import view

pytestmark = pytest.mark.slow
LAST_EDIT = "def fizzbuzz(n):  # typed at the very end, never saved"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(tmp_path_factory.mktemp("hub-browser"), None)
    yield hub
    stop_hub(hub)


@pytest.fixture(autouse=True, scope="module")
def patient_expect():
    """A spawn and a first Voilà page take seconds on these shared cores."""
    expect.set_options(timeout=30_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def two_browsers(playwright_instance, tmp_path):
    """The interviewer's and the candidate's browsers: separate profiles, separate cookies."""
    contexts = [playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / who), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900}) for who in ("interviewer", "candidate")]
    pages = [c.pages[0] if c.pages else c.new_page() for c in contexts]
    for p in pages:
        p.set_default_timeout(60_000)
    yield pages
    for c in contexts:
        c.close()


def shoot(page, name: str) -> None:
    """test-artifacts/hub-interview-<name>.png, for a person to look at."""
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "test-artifacts" / f"hub-interview-{name}.png"))


def test_one_link_interview_end_to_end(hub, two_browsers, tmp_path):
    interviewer, candidate = two_browsers
    # The interviewer signs in through the hub and lands on the monitor.
    interviewer.goto(f"{hub.url}/hub/login")
    interviewer.fill("input[name=username]", "interviewer")
    interviewer.fill("input[name=password]", PASSWORD)
    interviewer.click("input[type=submit], button[type=submit]")
    expect(interviewer).to_have_url(re.compile(r"/services/interview-buddy/voila/render/monitor"))
    interviewer.locator(".ib-dash").wait_for(state="visible", timeout=120_000)

    # ... creates a session on the create page, which shows the candidate's link.
    interviewer.goto(f"{hub.svc}/voila/render/create.ipynb")
    form = interviewer.locator(".ib-form")
    form.wait_for(state="visible", timeout=120_000)
    form.locator(".ib-input-name input").fill("Margaret Hamilton")
    form.locator(".ib-submit").click()
    created = interviewer.locator(".ib-created")
    session_id = created.locator(".ib-session-id").inner_text(timeout=60_000)
    hub.users.add(contract.hub_user_for(session_id))
    link = created.locator(".ib-copy-text").first.inner_text()
    assert link.startswith(f"{hub.url}/hub/{contract.LINK_PATH}/")
    shoot(interviewer, "created")

    # The candidate opens it: their own JupyterLab, on the interview notebook.
    candidate.goto(link)
    expect(candidate).to_have_url(re.compile(r"/user/ib-s-[0-9a-f]+/lab/tree/interview\.ipynb"),
                                  timeout=180_000)
    candidate.get_by_text(IDLE).wait_for(timeout=120_000)
    challenge = hub.client().session(session_id)["challenge"]
    panel = candidate.locator(".ib-side")  # beside the notebook on open, nothing to run
    expect(panel.locator(".ib-gauge-value").first).to_have_text(CLOCK)
    expect(panel.locator(".ib-challenge-title")).to_have_text(challenge["title"])
    shoot(candidate, "candidate-lab")

    # ... chats through the panel; the reply streams in.
    panel.locator(".ib-input").fill("How should I start? [[slow:20]] [[tokens:60]]")
    panel.locator(".ib-input").press("Enter")
    expect(panel.locator(".ib-msg-ai.ib-streaming")).to_have_count(1)
    expect(panel.locator(".ib-msg-ai.ib-streaming")).to_have_count(0)
    expect(panel.locator(".ib-msg-ai")).to_have_count(1)

    # The interviewer's monitor shows the message.
    interviewer.goto(f"{hub.svc}/voila/render/monitor.ipynb")
    interviewer.locator(".ib-name", has_text="Margaret Hamilton").click(timeout=120_000)
    monitor = interviewer.locator(".ib-panel")
    expect(monitor.locator(".ib-msg-user")).to_contain_text("How should I start?")
    shoot(interviewer, "monitor")

    # The candidate types one more line and does not save it.
    cells = candidate.locator(".jp-Notebook .jp-Cell")
    cells.nth(cells.count() - 1).locator(".jp-InputArea-editor").click()
    candidate.keyboard.type(LAST_EDIT)
    expect(candidate.locator(".jp-mod-dirty")).not_to_have_count(0)

    # The interviewer ends the interview from the monitor.
    monitor.locator(".ib-action-end").click()
    monitor.locator(".ib-confirm").click()
    expect(panel.locator(".ib-pill")).to_have_text(view.STATUS_LABELS["completed"])
    closed = wait_closed(hub, session_id)
    assert closed["payload"]["saved_after_end"] and closed["payload"]["server_stopped"]

    # The reviewer's export holds that last edit, though it was never saved or submitted.
    out = tmp_path / "export.ipynb"
    r = subprocess.run([sys.executable, "-m", "ib_extension.cli", "export", session_id,
                        "--url", hub.svc, "--token", IB_TOKEN, "-o", str(out)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert LAST_EDIT in json.dumps(json.loads(out.read_text()))

    # And the link now says the interview is over.
    candidate.goto(link)
    expect(candidate.locator("body")).to_contain_text("This interview is over")
    shoot(candidate, "over")
