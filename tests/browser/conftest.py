"""Real pages in Debian's headless Chromium, driven by Playwright (never a downloaded browser).

Screenshots go to test-artifacts/ so a person can look at what the tests saw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items):
    for item in items:
        if "browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


# pytest-jupyter's autouse fixtures install an asyncio loop for every test; Playwright's
# sync API refuses to run inside one. Browser tests start their servers as processes.
@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    yield


@pytest.fixture(scope="module")
def playwright_instance():
    # Per module: a live sync Playwright keeps an event loop running in this thread, and
    # the pytest-jupyter tests collected after the browser folder need it gone.
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test` (it installs Debian's "
                    "chromium) or set IB_CHROMIUM.")
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser_context(playwright_instance, tmp_path):
    ctx = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
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
def live_service(live):
    return live
