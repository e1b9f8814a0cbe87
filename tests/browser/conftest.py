"""Real pages in Debian's headless Chromium, driven by Playwright (never a downloaded browser).

Screenshots go to test-artifacts/ so a person can look at what the tests saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from live import start_service, stop_service

CHROMIUM = os.environ.get("IB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test` (it installs Debian's "
                    "chromium) or set IB_CHROMIUM.")
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser_context(playwright_instance, tmp_path):
    ctx = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
        viewport={"width": 1400, "height": 900},
    )
    yield ctx
    ctx.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    page.set_default_timeout(30_000)
    yield page


@pytest.fixture
def screenshot(page, request):
    """screenshot("state") saves test-artifacts/<test>-<state>.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def shoot(name: str, target=None) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        (target or page).screenshot(path=str(path))
        return path

    return shoot


@pytest.fixture(scope="module")
def live_service(fake_llm_url, tmp_path_factory):
    """`ib serve` as a real process on a free port, with the offline demo model."""
    live = start_service(fake_llm_url, tmp_path_factory.mktemp("live") / "data")
    yield live
    stop_service(live)
