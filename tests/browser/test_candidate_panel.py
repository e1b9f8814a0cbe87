"""The candidate's panel in real JupyterLab (headless Chromium), in the workspace's side
panel: chat streaming and the token meter, a busy kernel that does not freeze the panel,
pause/lock/end and budget refusals reflected with the service's sentences, an XSS reply
that runs nothing, a reload that restores the conversation, and Submit with its in-page
confirmation. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from helpers import stop, wait_for
from live import start_lab
from playwright.sync_api import expect
from workspace_page import (
    BUSY,
    IDLE,
    ask,
    code_cell,
    let_handlers_run,
    notebook_shown,
    open_workspace,
    set_source,
)

from ib_extension.candidate.panel import view


@pytest.fixture(scope="module")
def workspace(live_service, tmp_path_factory):
    ws = start_lab(live_service, tmp_path_factory.mktemp("panel-labs"), challenge_id=None,
                   challenge_title="FizzBuzz",
                   challenge_text="Write `fizzbuzz(n)` returning the FizzBuzz strings for 1..n.\n\n"
                                  "```python\nassert fizzbuzz(3) == ['1', '2', 'Fizz']\n```")
    yield ws
    stop(ws.proc)


def open_panel(page, ws, **kw):
    """The workspace as the candidate opens it (the panel needs no cell to run)."""
    return open_workspace(page, ws, **kw)


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
    expect(replies.last.locator(".ib-msg-foot")).to_have_text("The reply was cut off here.",
                                                              timeout=30_000)
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
    panel = open_panel(page, workspace, to_run_code=True)
    last = page.locator(".jp-Notebook .jp-Cell.jp-CodeCell").count() - 1
    sleeper = code_cell(page, last)  # the template's empty last cell (Shift+Enter adds one)
    set_source(page, last, "import time; time.sleep(30)")
    sleeper.locator(".jp-InputArea-editor").click()
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
    box, banner, pill = panel.locator(".ib-input"), panel.locator(".ib-banner-title"), panel.locator(".ib-pill")
    for action, undo, key in (("pause", "resume", "paused"), ("lock", "unlock", "locked")):
        published = live_service.client.action(workspace.session_id, action)["blocked"]
        expect(banner).to_have_text(published["message"])
        expect(box).to_be_disabled()
        expect(panel.locator(".ib-btn-send")).to_be_disabled()
        expect(pill).to_have_text(view.STATUS_LABELS[key])
        screenshot(key)
        live_service.client.action(workspace.session_id, undo)
        expect(box).to_be_enabled()
        expect(panel.locator(".ib-banner")).to_be_hidden()
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
    let_handlers_run(page)
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
    page.reload()
    notebook_shown(page)
    # The side panel comes back by itself, drawn from the service.
    panel = page.locator(".ib-side")
    expect(panel.locator(".ib-msg")).to_have_count(len(messages), timeout=20_000)
    shown = panel.locator(".ib-msg").evaluate_all("els => els.map(e => e.dataset.messageId)")
    assert shown == [m["id"] for m in messages]


def test_the_interviewer_ends_the_interview(page, workspace, live_service, screenshot):
    # Ends the shared session: keep this the last test that uses `workspace`.
    panel = open_panel(page, workspace)
    published = live_service.client.action(workspace.session_id, "end")["blocked"]
    expect(panel.locator(".ib-banner-title")).to_have_text(published["message"])
    expect(panel.locator(".ib-pill")).to_have_text(view.STATUS_LABELS["completed"])
    expect(panel.locator(".ib-input")).to_be_disabled()
    expect(panel.locator(".ib-btn-submit")).to_be_disabled()
    expect(panel.locator(".ib-note").filter(has_text="The interviewer ended the interview.")).to_have_count(1)
    # The workspace hands the notebook in and turns read-only.
    expect(panel.locator(".ib-banner-more")).to_contain_text("Your work was handed in at",
                                                            timeout=60_000)
    expect(page.locator(".jp-NotebookPanel .ib-ended-bar")).to_be_visible()
    assert live_service.client.session(workspace.session_id)["handed_in"]["by"] == "workspace"
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
        notes = panel.locator(".ib-note")
        # Crossing every threshold at once, the service warns once, with the most severe.
        expect(notes.filter(has_text="of your token budget is left")).to_have_text(
            [f"Less than {min(state['thresholds'])}% of your token budget is left: "
             f"{state['tokens_left']} tokens."])
        screenshot("budget-low")

        # What is left cannot pay for even the shortest question: the budget is used up,
        # and the AI closes as it does at time-up (banner, input and Send disabled).
        banner = panel.locator(".ib-banner")
        expect(banner).to_have_attribute("data-reason", "budget_exhausted", timeout=20_000)
        expect(panel.locator(".ib-banner-title")).to_have_text(re.compile(
            r"^Your token budget is used up: \d+ of your \d+ tokens are left"))
        expect(panel.locator(".ib-input")).to_be_disabled()
        expect(panel.locator(".ib-btn-send")).to_be_disabled()
        screenshot("budget-used-up")

        live_service.client.extend_tokens(ws.session_id, 5000)
        expect(notes.filter(has_text="5,000 more tokens")).to_have_count(1)
        expect(tokens).to_have_attribute("data-level", "ok")
        expect(banner).to_be_hidden()
        ask(panel, "Where do I begin?")
        expect(panel.locator(".ib-msg-ai")).to_have_count(2)
        expect(panel.locator(".ib-streaming")).to_have_count(0)

        panel.locator(".ib-btn-submit").click()  # asks in the page, not in a browser dialog
        confirm = panel.locator(".ib-confirm")
        expect(confirm).to_be_visible()
        expect(panel.locator(".ib-confirm-yes")).to_be_focused()
        screenshot("submit-confirm")
        page.keyboard.press("Escape")
        expect(confirm).to_be_hidden()
        panel.locator(".ib-btn-submit").click()
        panel.locator(".ib-confirm-yes").click()
        published = wait_for(lambda: live_service.client.session(ws.session_id)["blocked"],
                             "the submission to end the session")
        assert "submitted" in published["message"]
        expect(panel.locator(".ib-banner-title")).to_have_text(published["message"])
        expect(panel.locator(".ib-banner-more")).to_contain_text(
            re.compile(r"Your work was handed in at \d\d:\d\d when you submitted"))
        expect(panel.locator(".ib-input")).to_be_disabled()
        expect(panel.locator(".ib-btn-submit")).to_be_disabled()
        screenshot("submitted")
        session = live_service.client.session(ws.session_id)
        assert (session["status"], session["end_reason"]) == ("completed", "submitted")
        [submitted] = live_service.client.events(ws.session_id, "session.submitted")["events"]
        sources = [c["source"] for c in submitted["payload"]["notebook"]["cells"]]
        assert "".join(sources[0]).startswith("# FizzBuzz")
    finally:
        stop(ws.proc)
