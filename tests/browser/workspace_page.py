"""Driving the candidate's workspace in Chromium: open it, find its interview panel, ask."""

from __future__ import annotations

import re

from helpers import REPO
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

IDLE = "Python 3 (ipykernel) | Idle"
BUSY = "Python 3 (ipykernel) | Busy"
CLOCK = re.compile(r"\d+:\d\d")
# axe-core, from npm (labextension/package-lock.json; `make` installs it).
AXE = REPO / "labextension" / "node_modules" / "axe-core" / "axe.min.js"


def open_workspace(page, ws, *, reset: bool = True, to_run_code: bool = False):
    """Open the workspace as a candidate does (the lab's default URL, nothing to run) and
    return the interview panel once it shows the session beside the notebook; with
    ``to_run_code``, once the notebook's kernel is idle too."""
    page.goto(f"{ws.url}/lab{'?reset&' if reset else '?'}token={ws.token}")
    notebook_shown(page)
    if to_run_code:
        kernel_idle(page, ws)
    panel = page.locator(".ib-side")
    expect(panel.locator(".ib-gauge-value").first).to_have_text(CLOCK, timeout=30_000)
    return panel


def notebook_shown(page) -> None:
    expect(page.locator(".jp-NotebookPanel .jp-Notebook")).to_be_visible(timeout=90_000)


def kernel_idle(page, ws, timeout: float = 90_000) -> None:
    """Wait for the notebook's kernel to show Idle; if it does not, say what the page and
    the server showed (JupyterLab's kernel connection can stall on a loaded machine)."""
    try:
        page.get_by_text(IDLE).wait_for(timeout=timeout)
    except PlaywrightTimeoutError as e:
        shown = page.locator(".jp-StatusBar-Widget").all_inner_texts()
        with ws.client() as http:
            kernels = http.get("/api/kernels").json()
        raise AssertionError(f"The notebook's kernel never showed Idle. Status bar: {shown}; "
                             f"the server's kernels: {kernels}") from e


def let_handlers_run(page) -> None:
    """Return once the page has run its queued tasks and drawn a frame: where a handler an
    attacker slipped in would have fired (for asserting that none did), without a sleep."""
    page.evaluate("() => new Promise(r => setTimeout(() => requestAnimationFrame(() => r()), 0))")


def ask(panel, text: str) -> None:
    box = panel.locator(".ib-input")
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def code_cell(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell.jp-CodeCell").nth(index)


def type_into(page, cell, text: str) -> None:
    """Replace a cell's code with one line typed as a candidate does."""
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def set_source(page, index: int, source: str) -> None:
    """Put `source` in the current notebook's code cell `index` as an edit in the page (not
    saved), for code longer than a line: typing it would fight the editor's auto-indent."""
    page.evaluate("""([i, src]) => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const cells = nb.widgets.filter(w => w.model.type === "code");
        cells[i < 0 ? cells.length + i : i].model.sharedModel.setSource(src);
    }""", [index, source])


def run_cell(page, cell) -> None:
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=60_000)


def axe_violations(page, selector: str = ".ib-side") -> list[dict]:
    """Serious and critical axe-core violations inside `selector`."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async (sel) => (await axe.run(sel, {resultTypes: ["violations"]}))
        .violations.map(v => ({id: v.id, impact: v.impact,
                               nodes: v.nodes.map(n => n.target.join(" "))}))""", selector)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def set_theme(page, theme: str) -> None:
    page.locator("#jp-MainMenu").get_by_text("Settings", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", theme)
