"""The candidate's panel in real JupyterLab (headless Chromium): chat streaming and the
token meter, a busy kernel that does not freeze the panel, pause/lock/end and budget
refusals reflected with the service's sentences, an XSS reply that runs nothing, and a
reload that restores the conversation. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from helpers import stop, wait_for
from live import start_lab
from playwright.sync_api import expect

from ib_extension.candidate.panel import view

IDLE = "Python 3 (ipykernel) | Idle"
BUSY = "Python 3 (ipykernel) | Busy"


@pytest.fixture(scope="module")
def workspace(live_service, tmp_path_factory):
    ws = start_lab(live_service, tmp_path_factory.mktemp("panel-labs"), challenge_id=None,
                   challenge_title="FizzBuzz",
                   challenge_text="Write `fizzbuzz(n)` returning the FizzBuzz strings for 1..n.\n\n"
                                  "```python\nassert fizzbuzz(3) == ['1', '2', 'Fizz']\n```")
    yield ws
    stop(ws.proc)


def open_panel(page, ws):
    """Open the candidate notebook in a fresh layout (an earlier test may have left an
    output view in the shared workspace), run the panel cell, wait for the panel's state."""
    page.goto(f"{ws.url}/lab/tree/interview.ipynb?reset&token={ws.token}")
    page.get_by_text(IDLE).wait_for(timeout=60_000)
    page.locator(".jp-Cell").first.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    panel = page.locator(".ib-panel").last
    expect(panel.locator(".ib-gauge-value").first).to_have_text(re.compile(r"\d+:\d\d"), timeout=30_000)
    return panel


def ask(panel, text: str):
    box = panel.locator(".ib-input")
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def tokens_text(state: dict) -> str:
    return f"{state['tokens_left']:,} / {state['token_budget']:,}"


def test_a_reply_streams_in_and_the_token_meter_moves(page, workspace, live_service, screenshot):
    panel = open_panel(page, workspace)
    tokens = panel.locator(".ib-gauge-value").nth(1)
    expect(tokens).to_have_text(tokens_text(live_service.client.session(workspace.session_id)))
    before = tokens.inner_text()
    panel.locator(".ib-input").fill("How should I start? [[slow:20]] [[tokens:60]]")
    expect(panel.locator(".ib-estimate")).to_contain_text("with the conversation so far")
    screenshot("typing")
    panel.locator(".ib-input").press("Enter")

    streaming = panel.locator(".ib-msg-ai.ib-streaming")
    expect(streaming).to_have_count(1)
    expect(panel.locator(".ib-btn-stop")).to_be_visible()
    # The text grows while the reply is still streaming.
    page.wait_for_function("() => (document.querySelector('.ib-streaming .ib-msg-body')"
                           "?.textContent.length || 0) > 40")
    expect(streaming).to_have_count(1)
    screenshot("streaming")

    expect(streaming).to_have_count(0, timeout=30_000)
    reply = panel.locator(".ib-msg-ai").last
    messages = live_service.client.messages(workspace.session_id)["messages"]
    expect(reply.locator(".ib-badge")).to_have_text(f"{messages[-1]['completion_tokens']:,} tokens")
    expect(tokens).not_to_have_text(before)
    expect(tokens).to_have_text(tokens_text(live_service.client.session(workspace.session_id)))
    expect(panel.locator(".ib-btn-stop")).to_be_hidden()
    screenshot("replied")


def test_stop_and_copy(page, workspace, live_service, screenshot):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    panel = open_panel(page, workspace)
    replies = panel.locator(".ib-msg-ai")
    count = replies.count()
    ask(panel, "Write a long essay. [[tokens:400]] [[slow:15]]")
    expect(panel.locator(".ib-streaming")).to_have_count(1)
    panel.locator(".ib-btn-stop").click()
    expect(panel.locator(".ib-note").filter(has_text="You stopped the reply.")).to_have_count(1)
    expect(replies.last.locator(".ib-msg-foot")).to_have_text("The reply was cut off here.")
    stopped = live_service.client.messages(workspace.session_id)["messages"][-1]
    assert stopped["status"] == "cut" and stopped["completion_tokens"] < 400

    ask(panel, "Show me a loop.")  # the demo model's canned reply has a python block
    expect(replies).to_have_count(count + 2)
    expect(panel.locator(".ib-streaming")).to_have_count(0)
    code = replies.last.locator("pre code")
    code_text = code.inner_text()
    replies.last.locator(".ib-copy-code").click()
    expect(replies.last.locator(".ib-copy-code")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == code_text
    screenshot("copied")
    events = live_service.client.events(workspace.session_id, "activity.copy")["events"]
    reply_id = replies.last.get_attribute("data-message-id")
    assert [(e["payload"]["message_id"], e["payload"]["kind"]) for e in events][-1] == (reply_id, "code")


def test_a_busy_kernel_does_not_freeze_the_panel(page, workspace, live_service, screenshot):
    open_panel(page, workspace)
    # Dock the panel beside the code, as the template suggests, to watch both at once.
    page.locator(".jp-OutputArea-output").first.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Create New View for Cell Output").click()
    expect(page.locator(".ib-panel")).to_have_count(2)
    panel = page.locator(".ib-panel").last
    expect(panel.locator(".ib-gauge-value").first).to_have_text(re.compile(r"\d+:\d\d"))
    cells = page.locator(".jp-Notebook .jp-Cell")
    sleeper = cells.nth(cells.count() - 1)  # the template's empty last cell
    sleeper.locator(".jp-InputArea-editor").click()
    page.keyboard.type("import time; time.sleep(30)")
    page.keyboard.press("Shift+Enter")
    page.get_by_text(BUSY).wait_for()
    clock = panel.locator(".ib-gauge-value").first
    ticked_from = clock.inner_text()
    expect(clock).not_to_have_text(ticked_from)  # the countdown ticks while the cell runs

    replies = panel.locator(".ib-msg-ai")
    count = replies.count()
    ask(panel, "Can you explain the modulo operator? [[reply:It gives the **remainder**.]]")
    expect(replies).to_have_count(count + 1)
    expect(replies.last.locator(".ib-msg-body")).to_have_text("It gives the remainder.")
    expect(sleeper.locator(".jp-InputPrompt")).to_have_text("[*]:")  # all while the cell runs
    screenshot("busy-kernel")
    page.locator("[data-command='notebook:interrupt-kernel']").click()
    page.get_by_text(IDLE).wait_for()


def test_pause_lock_disable_input_with_the_reason_and_it_comes_back(page, workspace,
                                                                    live_service, screenshot):
    panel = open_panel(page, workspace)
    box, banner, pill = panel.locator(".ib-input"), panel.locator(".ib-banner"), panel.locator(".ib-pill")
    for action, undo, key in (("pause", "resume", "paused"), ("lock", "unlock", "locked")):
        published = live_service.client.action(workspace.session_id, action)["blocked"]
        expect(banner).to_have_text(published["message"])
        expect(box).to_be_disabled()
        expect(panel.locator(".ib-btn-send")).to_be_disabled()
        expect(pill).to_have_text(view.STATUS_LABELS[key])
        screenshot(key)
        live_service.client.action(workspace.session_id, undo)
        expect(box).to_be_enabled()
        expect(banner).to_be_hidden()
    notes = panel.locator(".ib-note")
    for text in ("The interviewer paused the session.", "The interviewer resumed the session.",
                 "The interviewer locked the AI assistant.", "The AI assistant is available again."):
        expect(notes.filter(has_text=text)).to_have_count(1)


XSS = ("Here you go <img src=x onerror=\"window.__ib_xss = 'img'\">\n\n"
       "<script>window.__ib_xss = 'script'</script>\n\n"
       "[a link](javascript:window.__ib_xss='link')")


def test_an_xss_reply_executes_nothing(page, workspace, screenshot):
    panel = open_panel(page, workspace)
    replies = panel.locator(".ib-msg-ai")
    count = replies.count()
    ask(panel, f"Show me something [[reply:{XSS}]]")
    expect(replies).to_have_count(count + 1)
    reply = replies.last
    expect(reply).not_to_have_class(re.compile("ib-streaming"))
    expect(reply.locator("a")).to_have_text("a link")
    reply.locator("a").click()
    page.wait_for_timeout(200)  # give any injected handler the chance to run (it must not)
    assert page.evaluate("() => window.__ib_xss") is None
    assert panel.locator("script, img, [onerror]").count() == 0
    assert "javascript:" not in (reply.locator("a").get_attribute("href") or "")
    screenshot("xss")


def test_reload_restores_the_whole_conversation(page, workspace, live_service):
    panel = open_panel(page, workspace)
    replies = panel.locator(".ib-msg-ai")
    count = replies.count()
    ask(panel, "Before the reload [[reply:Noted.]]")
    expect(replies).to_have_count(count + 1)
    expect(panel.locator(".ib-streaming")).to_have_count(0)
    messages = live_service.client.messages(workspace.session_id)["messages"]
    page.keyboard.press("Control+s")
    page.get_by_text("Saving completed").wait_for()
    page.reload()
    page.get_by_text(IDLE).wait_for(timeout=60_000)
    # The saved output refers to the live widget: it comes back without running the cell.
    panel = page.locator(".ib-panel").last
    expect(panel.locator(".ib-msg")).to_have_count(len(messages), timeout=20_000)
    shown = panel.locator(".ib-msg").evaluate_all("els => els.map(e => e.dataset.messageId)")
    assert shown == [m["id"] for m in messages]


def test_the_interviewer_ends_the_interview(page, workspace, live_service, screenshot):
    # Ends the shared session: keep this the last test that uses `workspace`.
    panel = open_panel(page, workspace)
    published = live_service.client.action(workspace.session_id, "end")["blocked"]
    expect(panel.locator(".ib-banner")).to_have_text(published["message"])
    expect(panel.locator(".ib-pill")).to_have_text(view.STATUS_LABELS["completed"])
    expect(panel.locator(".ib-input")).to_be_disabled()
    expect(panel.locator(".ib-btn-submit")).to_be_disabled()
    expect(panel.locator(".ib-note").filter(has_text="The interviewer ended the interview.")).to_have_count(1)
    screenshot("ended")


def test_budget_warnings_refusal_extension_and_submit(page, live_service, tmp_path, screenshot):
    ws = start_lab(live_service, tmp_path, token_budget=400)
    try:
        panel = open_panel(page, ws)
        ask(panel, "Tell me everything. [[tokens:2000]]")  # capped: it spends almost all
        expect(panel.locator(".ib-msg-ai")).to_have_count(1)
        expect(panel.locator(".ib-streaming")).to_have_count(0)
        state = live_service.client.session(ws.session_id)
        level = view.level(view.percent(state["tokens_left"], state["token_budget"]),
                           state["thresholds"])
        assert level == "critical"
        tokens = panel.locator(".ib-gauge").nth(1)
        expect(tokens).to_have_attribute("data-level", level)
        # The bar has finished its transition to red (panel.css: --ib-critical).
        expect(tokens.locator(".ib-fill")).to_have_css("background-color", "rgb(217, 59, 59)")
        notes = panel.locator(".ib-note")
        # Crossing every threshold at once, the service warns once, with the most severe.
        expect(notes.filter(has_text="of your token budget is left")).to_have_text(
            [f"Less than {min(state['thresholds'])}% of your token budget is left: "
             f"{state['tokens_left']} tokens."])
        screenshot("budget-low")

        question = "Where do I begin?"
        ask(panel, question)
        expect(panel.locator(".ib-note-warn").last).to_contain_text("Your token budget is used up")
        expect(panel.locator(".ib-input")).to_have_value(question)  # their words are kept
        screenshot("budget-refused")

        live_service.client.extend_tokens(ws.session_id, 5000)
        expect(notes.filter(has_text="5,000 more tokens")).to_have_count(1)
        expect(tokens).to_have_attribute("data-level", "ok")
        panel.locator(".ib-input").press("Enter")
        expect(panel.locator(".ib-msg-ai")).to_have_count(2)
        expect(panel.locator(".ib-streaming")).to_have_count(0)

        page.once("dialog", lambda dialog: dialog.accept())  # "Submit your notebook and end...?"
        panel.locator(".ib-btn-submit").click()
        published = wait_for(lambda: live_service.client.session(ws.session_id)["blocked"],
                             "the submission to end the session")
        assert "submitted" in published["message"]
        expect(panel.locator(".ib-banner")).to_have_text(published["message"])
        expect(panel.locator(".ib-input")).to_be_disabled()
        expect(panel.locator(".ib-btn-submit")).to_be_disabled()
        screenshot("submitted")
        session = live_service.client.session(ws.session_id)
        assert (session["status"], session["end_reason"]) == ("completed", "submitted")
        [submitted] = live_service.client.events(ws.session_id, "session.submitted")["events"]
        sources = [c["source"] for c in submitted["payload"]["notebook"]["cells"]]
        assert any("show_panel()" in "".join(src) for src in sources)
    finally:
        stop(ws.proc)
