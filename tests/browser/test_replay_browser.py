"""The History and Replay dashboards in Voilà, served by a live `ib serve`, in Chromium."""

from __future__ import annotations

import json

import pytest
from a11y import assert_accessible
from playwright.sync_api import expect
from replay_sessions import QUESTION, play

from ib_extension.review.replay import timeline

LOAD = 90_000  # ms: a Voilà page's first kernel on 2 busy cores


@pytest.fixture(scope="module")
def played(live_service):
    return play(live_service, candidate="Grace Hopper")


def open_page(page, live, name: str, query: str = "") -> None:
    page.goto(f"{live.url}/voila/render/{name}.ipynb?{query}&token={live.token}")


def test_replay_steps_forwards_and_backwards(live_service, played, page, screenshot):
    steps = timeline(live_service.client.record(played["id"]))
    n = len(steps)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_page(page, live_service, "replay", f"session_id={played['id']}")
    title, counter = page.locator(".ibh-step-title"), page.locator(".ibh-counter")
    expect(title).to_have_text(steps[0].title, timeout=LOAD)
    forward = page.get_by_role("button", name="Forward ▶")
    back = page.get_by_role("button", name="◀ Back")
    expect(back).to_be_disabled()

    asked = next(i for i, s in enumerate(steps) if s.kind == "question")
    for i in range(1, asked + 1):
        forward.click()
        expect(counter).to_have_text(f"{i + 1} / {n}")
        expect(title).to_have_text(steps[i].title)
    # the candidate's question is shown as text, its markup inert
    expect(page.locator(".ibh-msg-question")).to_contain_text(QUESTION)
    screenshot("question")

    back.click()
    expect(title).to_have_text(steps[asked - 1].title)
    expect(counter).to_have_text(f"{asked} / {n}")

    page.get_by_role("button", name="Last »").click()
    expect(title).to_have_text(steps[-1].title)
    expect(forward).to_be_disabled()
    submitted = max(i for i, s in enumerate(steps) if s.kind == "submit")
    for _ in range(n - 1 - submitted):
        back.click()
    expect(title).to_have_text(steps[submitted].title)
    added = sum(d.added for d in steps[submitted].detail["diff"])
    expect(page.locator(".ibh-d-add")).to_have_count(added)
    expect(page.locator(".ibh-messages")).to_have_text(str(steps[submitted].messages))
    screenshot("submitted-diff")
    assert dialogs == []

    # The keyboard steps too (← → Home End), and the page lists those keys.
    expect(page.locator(".ib-keys")).to_contain_text("← previous step")
    page.locator("body").click(position={"x": 5, "y": 5})  # focus on the page, not a field
    page.keyboard.press("Home")
    expect(counter).to_have_text(f"1 / {n}")
    page.keyboard.press("ArrowRight")
    expect(counter).to_have_text(f"2 / {n}")
    expect(title).to_have_text(steps[1].title)
    page.keyboard.press("ArrowLeft")
    expect(counter).to_have_text(f"1 / {n}")
    page.keyboard.press("End")
    expect(counter).to_have_text(f"{n} / {n}")
    assert_accessible(page, "the replay page")


def test_history_lists_the_session_opens_its_replay_and_exports_it(
        live_service, played, page, screenshot, tmp_path):
    open_page(page, live_service, "history")
    row = page.locator(".ibh-row", has_text="Grace Hopper")
    expect(row).to_have_count(1, timeout=LOAD)
    expect(row).to_contain_text("completed")
    screenshot("list")

    with page.expect_download() as download:  # one click, one file
        row.locator(".ib-download-button[data-format=json]").click()
    assert download.value.suggested_filename == f"{played['id']}.json"
    saved = tmp_path / "export.json"
    download.value.save_as(saved)
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert document["session"]["id"] == played["id"]
    assert played["candidate_token"] not in saved.read_text(encoding="utf-8")
    screenshot("export")
    assert_accessible(page, "the history page")

    with page.context.expect_page() as opened:
        row.get_by_role("link", name="Replay").click()
    replay = opened.value
    first = timeline(live_service.client.record(played["id"]))[0]
    expect(replay.locator(".ibh-step-title")).to_have_text(first.title, timeout=LOAD)
    assert f"session_id={played['id']}" in replay.url
    screenshot("opened-replay", replay)
