"""The candidate's workspace as a candidate meets it, in real JupyterLab (`ib lab`) and
headless Chromium, against a real `ib serve` with the demo model: open and ready with
nothing to run, side by side at 1280×800; the clock starts when the workspace is opened;
the whole chat by keyboard; axe-core in the light and dark themes; Run tests and Insert
below; Pause covers the notebook and interrupts running code; and a candidate who never
saves or submits still has their last code handed in, graded and exported at time-up,
with the workspace read-only after. Screenshots of each state go to test-artifacts/."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest
from helpers import stop, wait_for
from live import start_lab
from playwright.sync_api import expect
from workspace_page import (
    BUSY,
    IDLE,
    ask,
    axe_violations,
    code_cell,
    open_workspace,
    run_cell,
    set_source,
    set_theme,
    type_into,
)

from ib_extension.candidate.panel import view

MERGE = {"challenge_id": "merge-intervals", "challenge_text": None, "challenge_title": None}
SOLUTION = ("def merge_intervals(intervals):\n    out = []\n    for start, end in sorted(intervals):\n"
            "        if out and start <= out[-1][1]:\n            out[-1][1] = max(out[-1][1], end)\n"
            "        else:\n            out.append([start, end])\n    return out")
# How a closed state looks: the same for a used-up budget and for time up.
LOOK = ("b => ['background-color', 'color', 'border-left-color', 'border-left-width']"
        ".map(p => getComputedStyle(b).getPropertyValue(p)).join(' | ')")


@pytest.fixture(scope="module")
def workspace(live_service, tmp_path_factory):
    ws = start_lab(live_service, tmp_path_factory.mktemp("workspaces"), **MERGE)
    yield ws
    stop(ws.proc)


def events(live, ws, kind):
    return live.client.events(ws.session_id, kind)["events"]


def test_open_and_ready_side_by_side_with_nothing_to_run(page, workspace, live_service,
                                                        screenshot):
    # The candidate's server has read the session (and follows its feed): the clock waits.
    assert live_service.client.session(workspace.session_id)["status"] == "created"
    page.set_viewport_size({"width": 1280, "height": 800})
    panel = open_workspace(page, workspace)
    started = wait_for(lambda: live_service.client.session(workspace.session_id)["started_at"],
                       "opening the workspace to start the clock")
    assert [e["actor"] for e in events(live_service, workspace, "session.started")] == ["candidate"]
    assert len(events(live_service, workspace, "workspace.opened")) == 1
    assert started

    expect(panel.locator(".ib-challenge-title")).to_have_text("Merge Intervals")
    expect(panel.locator(".ib-gauge-value").nth(1)).to_have_text("20,000 / 20,000")
    expect(panel.locator(".ib-input")).to_be_in_viewport()
    # Side by side, the code in view.
    notebook = page.locator(".jp-NotebookPanel")
    starter = code_cell(page, 0)
    expect(starter).to_contain_text("def merge_intervals")
    expect(starter).to_be_in_viewport()
    nb_box, panel_box = notebook.bounding_box(), panel.bounding_box()
    assert nb_box["x"] + nb_box["width"] <= panel_box["x"] + 2
    assert nb_box["width"] >= 560 and panel_box["width"] >= 380, (nb_box, panel_box)
    # Opening it changed nothing: the notebook is not marked modified.
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    screenshot("open-1280x800")

    # Resizable: drag the splitter between the notebook and the panel.
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 120, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    wait_for(lambda: panel.bounding_box()["width"] > panel_box["width"] + 80, "the panel to widen")

    # Closed, and brought back from the View menu.
    page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab").first.click()
    expect(panel).to_be_hidden()
    page.locator("#jp-MainMenu").get_by_text("View", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text="Interview Panel").click()
    expect(panel).to_be_visible()
    screenshot("brought-back")


def test_the_whole_chat_by_keyboard(page, workspace, live_service, screenshot):
    panel = open_workspace(page, workspace)
    box = panel.locator(".ib-input")
    log = panel.locator(".ib-log")
    expect(log).to_have_attribute("role", "log")
    expect(log).to_have_attribute("aria-live", "polite")
    code_cell(page, 0).locator(".jp-InputArea-editor").click()  # the candidate is coding
    page.keyboard.press("Control+Shift+1")
    expect(box).to_be_focused()

    page.keyboard.type("First line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line [[reply:Noted, both lines.]]")
    expect(box).to_have_value("First line\nsecond line [[reply:Noted, both lines.]]")
    page.keyboard.press("Enter")
    expect(panel.locator(".ib-msg-user").last.locator(".ib-msg-body")).to_contain_text("second line")
    expect(panel.locator(".ib-msg-ai").last.locator(".ib-msg-body")).to_have_text("Noted, both lines.")
    expect(box).to_be_focused()  # ready for the next question

    page.keyboard.type("Write a long essay. [[tokens:400]] [[slow:15]]")
    page.keyboard.press("Enter")
    expect(panel.locator(".ib-streaming")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(panel.locator(".ib-note").filter(has_text="You stopped the reply.")).to_have_count(1)
    # The browser says so at once; the service settles when it sees the stream closed.
    stopped = wait_for(lambda: (m := live_service.client.messages(
        workspace.session_id)["messages"][-1])["status"] != "streaming" and m,
        "the stopped reply to be settled", within=60)
    assert stopped["status"] == "cut" and stopped["completion_tokens"] < 400

    # The newest reply's buttons are right behind the chat box: Shift+Tab, then Enter.
    cells = page.locator(".jp-Notebook .jp-Cell")
    before = cells.count()
    page.keyboard.type("Show me a loop.")  # the demo model answers with a python block
    page.keyboard.press("Enter")
    insert = panel.locator(".ib-msg-ai").last.locator(".ib-insert-code")
    expect(insert).to_be_visible()
    for _ in range(4):
        page.keyboard.press("Shift+Tab")
        if insert.evaluate("b => b === document.activeElement"):
            break
    expect(insert).to_be_focused()
    screenshot("keyboard-insert")
    page.keyboard.press("Enter")
    expect(cells).to_have_count(before + 1)
    code = panel.locator(".ib-msg-ai").last.locator("pre code").inner_text().rstrip("\n")
    expect(page.locator(".jp-Notebook .jp-Cell.jp-mod-active .jp-InputArea-editor")).to_contain_text(
        code.splitlines()[0])
    [inserted] = [e for e in events(live_service, workspace, "activity.copy")
                  if e["payload"]["kind"] == "insert"]
    assert inserted["payload"]["lines"] >= 2


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_axe_finds_nothing_serious_in_either_theme(page, workspace, live_service, screenshot,
                                                   theme):
    panel = open_workspace(page, workspace)
    set_theme(page, theme)
    ask(panel, "Show me a loop.")  # a reply with code, its buttons
    expect(panel.locator(".ib-insert-code").first).to_be_visible()
    panel.locator(".ib-input").fill("How long will this take?")  # the estimate shows too
    live_service.client.action(workspace.session_id, "lock")  # and the banner
    try:
        expect(panel.locator(".ib-banner")).to_be_visible()
        assert axe_violations(page) == []
        screenshot(theme.split()[-1].lower())
    finally:
        live_service.client.action(workspace.session_id, "unlock")
        set_theme(page, "JupyterLab Light")


def test_run_tests_in_the_kernel_with_pass_and_fail_per_test(page, workspace, live_service,
                                                             screenshot):
    panel = open_workspace(page, workspace, to_run_code=True)
    panel.locator(".ib-tests-summary").click()
    expect(panel.locator(".ib-tests-code")).to_contain_text("def test_")
    starter = code_cell(page, 0)
    # Wrong on purpose first: sorted but not merged.
    type_into(page, starter, "def merge_intervals(intervals):")
    page.keyboard.press("Enter")
    page.keyboard.type("return sorted(intervals)")  # the editor indents the body
    run_cell(page, starter)
    panel.locator(".ib-run-tests").click()
    results = panel.locator(".ib-test-results")
    expect(results.locator(".ib-test")).not_to_have_count(0, timeout=60_000)
    failed = results.locator(".ib-test-fail")
    expect(failed.first.locator(".ib-test-message")).to_contain_text("failed")
    screenshot("tests-failing")
    names = results.locator(".ib-test-name").all_inner_texts()
    challenge = live_service.client.session(workspace.session_id)["challenge"]
    assert names == re.findall(r"^def (test_\w+)", challenge["visible_tests"], re.M)

    set_source(page, 0, SOLUTION)
    run_cell(page, starter)
    panel.locator(".ib-run-tests").click()
    expect(results.locator(".ib-test-summary")).to_have_text(
        f"{len(names)} of {len(names)} visible tests passed.", timeout=60_000)
    expect(results.locator(".ib-test-fail")).to_have_count(0)
    screenshot("tests-passing")


def test_pause_interrupts_running_code_and_covers_the_notebook(page, workspace, live_service,
                                                               screenshot):
    panel = open_workspace(page, workspace, to_run_code=True)
    index = page.locator(".jp-Notebook .jp-Cell.jp-CodeCell").count() - 1
    last = code_cell(page, index)
    set_source(page, index, "import time; time.sleep(120)")
    last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    page.get_by_text(BUSY).wait_for()
    published = live_service.client.action(workspace.session_id, "pause")["blocked"]
    cover = page.locator(".jp-NotebookPanel .ib-cover")
    expect(cover).to_be_visible()
    expect(cover).to_contain_text("The interview is paused.")
    expect(panel.locator(".ib-banner-title")).to_have_text(published["message"])
    expect(panel.locator(".ib-banner-more")).to_have_text(view.CAN_STILL["session_paused"])
    page.get_by_text(IDLE).wait_for(timeout=30_000)  # the server interrupted the sleep
    expect(last.locator(".jp-OutputArea")).to_contain_text("KeyboardInterrupt")
    assert page.locator(".jp-NotebookPanel .jp-Notebook").evaluate("n => n.inert")
    screenshot("paused")
    live_service.client.action(workspace.session_id, "resume")
    expect(cover).to_be_hidden()
    assert not page.locator(".jp-NotebookPanel .jp-Notebook").evaluate("n => n.inert")


def test_never_saved_never_submitted_still_handed_in_graded_and_exported_at_time_up(
        page, live_service, tmp_path, screenshot):
    ws = start_lab(live_service, tmp_path, time_limit_seconds=60, token_budget=400, **MERGE)
    try:
        panel = open_workspace(page, ws, to_run_code=True)
        banner = panel.locator(".ib-banner")
        # Budget used up first: the banner, the input closed, what they can still do.
        ask(panel, "Tell me everything. [[tokens:2000]]")
        expect(panel.locator(".ib-msg-ai")).to_have_count(1)
        expect(panel.locator(".ib-streaming")).to_have_count(0)
        expect(banner).to_have_attribute("data-reason", "budget_exhausted", timeout=20_000)
        expect(panel.locator(".ib-banner-more")).to_have_text(view.CAN_STILL["budget_exhausted"])
        expect(panel.locator(".ib-input")).to_be_disabled()
        expect(panel.locator(".ib-btn-send")).to_be_disabled()
        budget_look = banner.evaluate(LOOK)
        screenshot("budget-exhausted")

        starter = code_cell(page, 0)
        set_source(page, 0, SOLUTION)
        run_cell(page, starter)  # run, never saved by the candidate, never submitted

        expect(banner).to_have_attribute("data-reason", "time_up", timeout=90_000)
        expect(panel.locator(".ib-input")).to_be_disabled()
        time_look = banner.evaluate(LOOK)
        assert time_look == budget_look  # the same banner, the same look
        expect(panel.locator(".ib-banner-more")).to_contain_text(
            re.compile(r"Your work was handed in at \d\d:\d\d at the end \(interview\.ipynb, 1 code cell\)"),
            timeout=60_000)
        screenshot("time-up-handed-in")

        session = live_service.client.session(ws.session_id)
        assert (session["status"], session["handed_in"]["by"]) == ("expired", "workspace")
        [handed] = live_service.client.events(ws.session_id, "notebook.handed_in")["events"]
        sources = ["".join(c["source"]) for c in handed["payload"]["notebook"]["cells"]]
        assert SOLUTION in sources
        grade = wait_for(lambda: live_service.client.session(ws.session_id)["grade"],
                         "the grade", within=180)
        visible = [t for t in grade["tests"] if t["visible"]]
        assert visible and all(t["passed"] for t in visible), grade

        # Read-only after the end: a banner on the notebook, no kernel, saves refused.
        expect(page.locator(".jp-NotebookPanel.ib-ended .ib-ended-bar")).to_be_visible()
        with ws.client() as c:
            wait_for(lambda: c.get("/api/kernels").json() == [], "the kernels to stop")
            saved = c.put("/api/contents/interview.ipynb",
                          json={"type": "notebook", "format": "json",
                                "content": handed["payload"]["notebook"]})
            assert saved.status_code == 403 and "ended" in saved.json()["message"]
            started = c.post("/api/kernels", json={"name": "python3"})
            assert started.status_code == 403

        # The export holds the code.
        out = tmp_path / "export.ipynb"
        subprocess.run([sys.executable, "-m", "ib_extension.cli", "export", ws.session_id,
                        "--format", "ipynb", "-o", str(out), "--url", live_service.url,
                        "--token", live_service.token], check=True, timeout=120,
                       capture_output=True)
        exported = json.loads(out.read_text())
        assert any("return out" in "".join(c["source"]) for c in exported["cells"])
    finally:
        stop(ws.proc)


def test_a_page_without_the_candidate_extension_stays_plain(live_service, tmp_path):
    """The labextension is installed with the package: a plain server must not show it."""
    r = httpx.get(live_service.url + "/ib/candidate/workspace",
                  headers={"Authorization": f"token {live_service.token}"})
    assert r.status_code == 404
