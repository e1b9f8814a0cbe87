"""The interviewer's Voilà dashboards, served by a real `ib serve`, in headless Chromium.

Each test makes its own sessions (unique names), so the tests share one service.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
import threading
import uuid

import openai
import pytest
from a11y import assert_accessible
from playwright.sync_api import expect
from session_records import code_cell, notebook

from ib_extension.api.client import IBClient

# The feed delivers within a second or two; the cap is generous so that a loaded machine
# does not fail the test (latency is measured in benchmarks/, not asserted here).
LIVE_WITHIN_MS = 30_000
CODE_WITHIN_MS = 15_000  # the bound for the code on the monitor behind a save
PAGE_READY_MS = 60_000  # a first Voilà load runs a kernel; other suites share these 2 cores


@pytest.fixture(autouse=True, scope="module")
def patient_expect():
    """Waits that are not the subject of a test get room for a loaded machine; the
    live-update assertions keep their own 3 s."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def dash(live_service):
    return live_service


def page_url(live, name: str, query: str = "") -> str:
    return f"{live.url}/voila/render/{name}.ipynb?token={live.token}{query}"


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def candidate(live, created) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/ib/v1", api_key=created["candidate_token"],
                         max_retries=0)


def ask(live, created, text: str) -> str:
    reply = candidate(live, created).chat.completions.create(
        model=created["session"]["model"], messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


def open_page(page, live, name: str, query: str = "") -> None:
    page.goto(page_url(live, name, query), wait_until="commit")
    page.locator(".ib-dash").wait_for(state="visible", timeout=PAGE_READY_MS)


def open_monitor(page, live, name: str):
    """Open the monitor and select the session of `name`; returns its panel."""
    open_page(page, live, "monitor")
    page.locator(".ib-name", has_text=name).click()
    panel = page.locator(".ib-panel")
    expect(panel.locator(".ib-panel-name")).to_have_text(name)
    return panel


def test_monitor_lists_sessions_and_shows_messages_live(dash, page, screenshot):
    watched = dash.create_session(candidate_name=unique("Ada"))
    name = watched["session"]["candidate_name"]
    panel = open_monitor(page, dash, name)
    # A session created while the page is open appears by itself (change feed).
    later = dash.create_session(candidate_name=unique("Grace"))
    expect(page.locator(".ib-name", has_text=later["session"]["candidate_name"])).to_be_visible()

    # The question shows while the reply is still streaming, without a reload.
    chat = threading.Thread(target=ask, args=(dash, watched, "How should I start? "
                                              "[[reply:Begin with the smallest case.]]"))
    chat.start()
    convo = panel.locator(".ib-convo")
    expect(convo.locator(".ib-msg-user")).to_contain_text("How should I start?",
                                                          timeout=LIVE_WITHIN_MS)
    chat.join()
    expect(convo.locator(".ib-msg-assistant .ib-msg-body")).to_have_text(
        "Begin with the smallest case.", timeout=LIVE_WITHIN_MS)
    row = page.locator(".ib-row", has=page.locator(".ib-name", has_text=name))
    expect(row.locator(".ib-status-active")).to_be_visible()
    expect(row.locator(".ib-cell-id")).to_have_text(watched["id"])  # the id, on the row
    # Events read as the catalogue's sentences, not as their type names.
    expect(panel.locator(".ib-ev-text", has_text="AI reply:")).to_be_visible()
    expect(panel.locator(".ib-col-events")).not_to_contain_text("chat.completed")
    screenshot("live-conversation")
    assert_accessible(page, "the monitor")


def test_the_monitor_shows_the_candidates_code_as_it_is_saved(dash, page, screenshot):
    s = dash.create_session(candidate_name=unique("Margaret"))
    ask(dash, s, "hello [[reply:hi]]")
    panel = open_monitor(page, dash, s["session"]["candidate_name"])
    code = panel.locator(".ib-live-notebook")
    expect(code).to_contain_text("No save yet")
    me = IBClient(dash.url, s["candidate_token"], scheme="bearer")
    try:
        # What the workspace sends on each (auto)save and cell run, through the real API.
        me.activity("activity.snapshot", {"path": "solution.ipynb", "reason": "autosave",
                                          "notebook": notebook(code_cell(
                                              "def fizzbuzz(n):\n    return n", id="c1"))})
        expect(code.locator(".ib-code")).to_contain_text("def fizzbuzz(n):",
                                                         timeout=CODE_WITHIN_MS)
        font = code.locator(".ib-code pre").first.evaluate("el => getComputedStyle(el).fontFamily")
        assert "mono" in font.lower(), font
        assert code.locator(".ib-code .k").count() >= 1  # highlighted: `def`, `return`
        me.activity("activity.cell_executed", {"cell_id": "c1", "execution_count": 1,
                                               "duration_ms": 12,
                                               "source": "def fizzbuzz(n):\n    return n"})
        runs = panel.locator(".ib-live-activity .ib-live-run")
        expect(runs).to_contain_text("Ran cell [1]", timeout=CODE_WITHIN_MS)
        changed = ("def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n"
                   "    return '<img src=x onerror=\"window.__xss=1\">'")
        me.activity("activity.snapshot", {"path": "solution.ipynb", "reason": "autosave",
                                          "notebook": notebook(code_cell(changed, id="c1"))})
    finally:
        me.close()
    expect(code).to_contain_text("+3 −1 lines in 1 code cell", timeout=CODE_WITHIN_MS)
    expect(code.locator(".hll")).to_have_count(3)  # the changed lines, marked
    expect(panel.locator(".ib-live-activity .ib-live-save").first.locator(".ibh-d-add")
           ).to_have_count(3)
    assert page.evaluate("window.__xss") is None and page.locator("img[src=x]").count() == 0
    code.scroll_into_view_if_needed()
    screenshot("live-code")


def test_streamed_reply_grows_without_losing_the_scroll_position(dash, page, screenshot):
    s = dash.create_session(candidate_name=unique("Linus"))
    for i in range(6):  # enough text to scroll
        ask(dash, s, f"Question {i} [[tokens:120]]")
    panel = open_monitor(page, dash, s["session"]["candidate_name"])
    scroller = panel.locator(".ib-convo-scroll")
    expect(panel.locator(".ib-msg")).to_have_count(12)
    page.wait_for_function(  # it opens at the end...
        "el => el.scrollHeight > el.clientHeight && "
        "el.scrollTop + el.clientHeight >= el.scrollHeight - 2", arg=scroller.element_handle())
    scroller.evaluate("el => { el.scrollTop = 40; }")  # ...the interviewer reads an old reply
    assert scroller.evaluate("el => el.scrollTop") == 40
    first = panel.locator(".ib-msg").first
    first.evaluate("el => { el.dataset.probe = 'same-node'; }")

    stream = candidate(dash, s).chat.completions.create(
        model=s["session"]["model"], stream=True,
        messages=[{"role": "user", "content": "Stream please [[tokens:60]] [[slow:40]]"}])
    next(iter(stream))  # the reply has started
    streaming = panel.locator(".ib-msg-status-streaming")
    expect(streaming).to_have_count(1, timeout=LIVE_WITHIN_MS)
    for _ in stream:
        pass
    expect(panel.locator(".ib-msg")).to_have_count(14)
    expect(streaming).to_have_count(0)
    # Same DOM nodes (nothing re-rendered) and the reader's place kept.
    assert first.evaluate("el => el.dataset.probe") == "same-node"
    assert scroller.evaluate("el => el.scrollTop") == 40
    screenshot("scroll-kept")


def test_pause_needs_confirmation_then_refuses_the_candidate(dash, page, screenshot):
    s = dash.create_session(candidate_name=unique("Edsger"))
    ask(dash, s, "hello [[reply:hi]]")  # the first request starts the clock
    panel = open_monitor(page, dash, s["session"]["candidate_name"])
    panel.locator(".ib-action-pause").click()
    confirm = panel.locator(".ib-confirm-box", has_text="Pause this interview?")
    expect(confirm).to_contain_text("Pause this interview?")
    # It says what a pause does to the candidate's workspace, not only to the AI.
    expect(confirm).to_contain_text("code running in the candidate's notebook is interrupted")
    assert dash.client.session(s["id"])["status"] == "active"  # nothing happens before yes
    screenshot("pause-confirm")
    confirm.locator(".ib-confirm").click()
    expect(panel.locator(".ib-result")).to_contain_text("Paused")
    expect(panel.locator(".ib-panel-title .ib-status-paused")).to_be_visible()

    with pytest.raises(openai.APIStatusError) as refused:
        ask(dash, s, "still there?")
    assert refused.value.code == "session_paused"
    # A refused action says why, in a sentence.
    panel.locator(".ib-action-end").click()
    panel.locator(".ib-confirm").click()
    expect(panel.locator(".ib-result .ib-notice-ok")).to_contain_text("Ended")
    screenshot("paused-then-ended")


def test_extend_tokens_raises_the_meter(dash, page, screenshot):
    s = dash.create_session(candidate_name=unique("Barbara"), token_budget=4000)
    panel = open_monitor(page, dash, s["session"]["candidate_name"])
    meter = panel.locator(".ib-meters .ib-bar").nth(1)
    expect(meter).to_contain_text("4,000 left of 4,000")
    panel.locator(".ib-input-tokens input").fill("2500")
    panel.locator(".ib-input-tokens input").press("Enter")
    panel.locator(".ib-action-extend-tokens").click()
    expect(meter).to_contain_text("6,500 left of 6,500")
    expect(panel.locator(".ib-result")).to_contain_text("Added 2,500 tokens")
    assert dash.client.session(s["id"])["token_budget"] == 6500
    screenshot("tokens-extended")


def test_refused_action_shows_the_services_sentence(dash, page):
    s = dash.create_session(candidate_name=unique("Alan"))
    panel = open_monitor(page, dash, s["session"]["candidate_name"])
    dash.client.action(s["id"], "end")  # ended elsewhere; the page learns it from the feed
    expect(panel.locator(".ib-panel-title .ib-status-completed")).to_be_visible()
    expect(panel.locator(".ib-action-end")).to_be_disabled()
    # Extending an ended session's time is refused by the service: the sentence is shown.
    panel.locator(".ib-action-extend-time").evaluate("el => el.disabled = false")
    panel.locator(".ib-action-extend-time").click()
    expect(panel.locator(".ib-result .ib-notice-error")).not_to_be_empty()


def test_xss_in_names_and_messages_executes_nothing(dash, page, screenshot):
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    s = dash.create_session(candidate_name=f"Mallory {payload}",
                            challenge_title=f"Hack {payload}")
    ask(dash, s, f"Hi {payload} [[reply:**bold** {payload}]]")
    open_page(page, dash, "monitor")
    page.locator(".ib-name", has_text="Mallory").click()
    panel = page.locator(".ib-panel")
    expect(panel.locator(".ib-msg-assistant .ib-msg-body")).to_contain_text(payload)
    expect(panel.locator(".ib-msg-user .ib-msg-body")).to_contain_text(payload)
    expect(panel.locator(".ib-panel-name")).to_contain_text(payload)
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    screenshot("xss-inert")


def test_create_page_validates_and_creates_a_session_the_api_lists(dash, page, browser_context,
                                                                   screenshot):
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dash.url)
    open_page(page, dash, "create")
    form = page.locator(".ib-form")
    expect(form.locator(".ib-input-model select")).to_have_value(
        dash.client.models()["default"])
    form.locator(".ib-input-minutes input").fill("0")
    form.locator(".ib-input-minutes input").press("Tab")
    form.locator(".ib-submit").click()
    expect(form.locator(".ib-field", has=page.locator(".ib-input-name"))).to_contain_text(
        "Enter the candidate's name.")
    expect(form.locator(".ib-field", has=page.locator(".ib-input-minutes"))).to_contain_text(
        "Between 1 and 480 minutes.")
    screenshot("create-validation")

    name = unique("Katherine")
    form.locator(".ib-input-name input").fill(name)
    form.locator(".ib-input-email input").fill("k@example.com")
    form.locator(".ib-input-minutes input").fill("30")
    form.locator(".ib-input-minutes input").press("Tab")
    form.locator(".ib-submit").dblclick()  # a double click makes one session
    created = page.locator(".ib-created")
    session_id = created.locator(".ib-session-id").inner_text(timeout=10_000)
    listed = {s["id"]: s for s in dash.client.list_sessions(limit=500)["sessions"]}
    assert listed[session_id]["candidate_name"] == name
    assert listed[session_id]["time_limit_seconds"] == 30 * 60
    form.locator(".ib-submit").click()  # the same form once more: still one session
    expect(form.locator(".ib-result")).to_contain_text("already created the session below")
    assert [s["id"] for s in dash.client.list_sessions(candidate=name)["sessions"]] == [session_id]

    handout = created.locator(".ib-copy").first
    expect(handout).to_contain_text("--session-token ibc_")
    handout.locator(".ib-copy-button").click()
    expect(handout.locator(".ib-copy-button")).to_have_text("Copied ✓")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert session_id not in copied and copied == handout.locator(".ib-copy-text").inner_text()
    screenshot("create-done")
    assert_accessible(page, "the create page, after a create")

    # Lost the token? Issue a new one: the old one stops working at once.
    old_token = re.search(r"--session-token (\S+)", copied).group(1)
    handover = page.locator(".ib-handover-box")
    handover.locator(".ib-handover").click()
    expect(handover.locator(".ib-confirm-box")).to_contain_text("stops working at once")
    handover.locator(".ib-handover-confirm").click()
    issued = handover.locator(".ib-handover-result .ib-copy").first
    expect(issued).to_contain_text("--session-token ibc_")
    new_token = re.search(r"--session-token (\S+)", issued.inner_text()).group(1)
    assert new_token != old_token
    with pytest.raises(openai.AuthenticationError):
        candidate(dash, {"candidate_token": old_token}).models.list()
    assert candidate(dash, {"candidate_token": new_token}).models.list().data
    screenshot("create-handover")


def test_create_names_an_existing_session_before_making_another(dash, page, screenshot):
    first = dash.create_session(candidate_name=unique("Frances"))
    name = first["session"]["candidate_name"]
    open_page(page, dash, "create")
    form = page.locator(".ib-form")
    expect(form.locator(".ib-input-model select")).to_have_value(
        dash.client.models()["default"])
    form.locator(".ib-input-name input").fill(name)
    form.locator(".ib-source").get_by_role("button", name="Custom text").click()
    form.locator(".ib-input-title input").fill("FizzBuzz")
    form.locator(".ib-input-statement textarea").fill("Write `fizzbuzz(n)`.")
    form.locator(".ib-input-statement textarea").press("Tab")
    form.locator(".ib-submit").click()
    result = form.locator(".ib-result")
    expect(result).to_contain_text(f"{name} already has a session on FizzBuzz")
    expect(result).to_contain_text(first["id"])
    assert len(dash.client.list_sessions(candidate=name)["sessions"]) == 1  # none made yet
    screenshot("create-existing")
    form.locator(".ib-create-another").click()
    second = page.locator(".ib-created .ib-session-id").inner_text(timeout=10_000)
    assert second != first["id"]
    assert {s["id"] for s in dash.client.list_sessions(candidate=name)["sessions"]} == {
        first["id"], second}


def test_create_previews_the_challenge_with_its_answer_key_and_explains_policies(dash, page,
                                                                                screenshot):
    library = {c["id"]: c for c in dash.client.challenges()["challenges"]}
    assert "lru-cache" in library
    open_page(page, dash, "create")
    form = page.locator(".ib-form")
    form.locator(".ib-source").get_by_role("button", name="From the library").click()
    lru = library["lru-cache"]
    form.locator(".ib-input-library select").select_option(
        label=f'{lru["title"]} · {lru.get("difficulty") or "?"} · {lru.get("category") or ""}')
    preview = form.locator(".ib-preview")
    expect(preview).to_contain_text("LRU Cache")
    expect(preview).to_contain_text("Starter code")
    expect(preview).to_contain_text("For you only", timeout=15_000)  # the answer key, read
    policy = form.locator(".ib-policy-help")
    expect(policy).to_contain_text("The AI is told:")
    texts = dash.client.models()["assist_policy_texts"]
    form.locator(".ib-input-policy select").select_option(label="Hints only")
    expect(policy).to_contain_text(texts["hints"][:40])
    screenshot("create-preview")
    assert_accessible(page, "the create page")


def test_analytics_draws_charts_and_exports_for_finished_sessions(dash, page, screenshot):
    title = unique("Word count")
    done = []
    for who, questions in (("Ann", 2), ("Ben", 1)):
        s = dash.create_session(candidate_name=unique(who), challenge_title=title,
                                challenge_text="Count words.")
        for i in range(questions):
            ask(dash, s, f"q{i} [[tokens:40]]")
        dash.client.extend_tokens(s["id"], 1000)
        dash.client.action(s["id"], "end")
        done.append(s)
    open_page(page, dash, "analytics", f"&session={done[0]['id']}")
    picked = page.locator(".ib-picker select")
    expect(picked).to_have_value(re.compile(re.escape(done[0]["session"]["candidate_name"])))
    expect(page.locator(".ib-stat", has_text="Messages")).to_contain_text("2 ↔ 2")
    for chart in ("tokens", "time", "messages", "compare"):
        expect(page.locator(f".ib-chart-{chart} .js-plotly-plot")).to_be_visible()
    expect(page.locator(".ib-chart-tokens")).to_contain_text("tokens extended")
    link = page.locator(".ib-download", has_text="CSV (2 sessions)")
    with page.expect_download() as download:
        link.click()
    text = open(download.value.path(), encoding="utf-8").read()
    assert all(s["id"] in text for s in done)
    screenshot("analytics")
    page.locator(".ib-compare").scroll_into_view_if_needed()
    screenshot("analytics-compare")
    assert_accessible(page, "the analytics page")
