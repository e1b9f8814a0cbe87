"""axe-core in a real page: the vendored copy (vendor/axe-core), injected with Playwright."""

from __future__ import annotations

import hashlib
from pathlib import Path

AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")


def violations(page, impacts=BLOCKING) -> list[dict]:
    """axe's violations on `page` of the given impacts, each with the nodes it found."""
    if hashlib.sha256(AXE.read_bytes()).hexdigest() != AXE_SHA256:
        raise AssertionError(f"{AXE} is not the axe-core build the tests were written for")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']}))"
                          ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
                          "nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + "
                          "n.failureSummary.slice(0, 200))}))")
    return [v for v in found if v["impact"] in impacts]


def report(found: list[dict]) -> str:
    return "\n".join(f"{v['impact']} {v['id']} ({v['help']}): {len(v['nodes'])} nodes, e.g. "
                     + "; ".join(v["nodes"][:3]) for v in found)


def assert_accessible(page, where: str) -> None:
    found = violations(page)
    assert not found, f"axe-core on {where}:\n{report(found)}"
