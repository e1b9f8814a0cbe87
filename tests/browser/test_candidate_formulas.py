"""panel.js in a plain Chromium page (no Jupyter): its formulas agree with view.py, and
its Markdown renderer executes nothing it is given."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS
from views import THRESHOLDS, session_view
from workspace_page import let_handlers_run

from ib_extension.candidate.panel import view
from ib_extension.candidate.panel.widget import bundle

LOAD = """async (src) => {
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  window.ib = (await import(url)).testing;
  return Object.keys(window.ib);
}"""




@pytest.fixture(scope="module")
def blank_page(playwright_instance, tmp_path_factory):
    """One browser for the whole module: these tests only need a plain page."""
    ctx = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("formulas-profile")), executable_path=CHROMIUM,
        headless=True, args=CHROMIUM_ARGS)
    yield ctx.pages[0]
    ctx.close()


@pytest.fixture
def js(blank_page):
    page = blank_page
    page.set_default_timeout(10_000)
    page.set_content("<!doctype html><html><body><div id='out' style='min-height:40px'></div></body></html>")
    assert "renderMarkdown" in page.evaluate(LOAD, bundle())
    return page


HISTORY = [
    {"id": "m1", "role": "user", "content": "q1 " * 30, "prompt_tokens": 310},
    {"id": "m2", "role": "assistant", "content": "a1 " * 50, "completion_tokens": 120},
    {"id": "m3", "role": "user", "content": "unsent so far"},
]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
# Real candidate views (the service's own Session and transitions) in every state.
STATES = [session_view(NOW, candidate=True, status=st, locked=lk and st not in ("completed", "expired"),
                       used=used, elapsed=elapsed, time_limit=1800.0, budget=20000,
                       submitted=sub and st == "completed",
                       challenge={"statement": "Write `fizzbuzz(n)` " * 10})
          for st, lk, used, elapsed, sub in itertools.product(
              ("created", "active", "paused", "completed", "expired"), (False, True),
              (20000, 19983, 1000), (1794.5, 600.0), (False, True))]


def test_formulas_match_view_py(js):
    rules = view.rules()
    cases = [(s, h, text, elapsed) for s in STATES[::3] for h in ([], HISTORY[:2], HISTORY)
             for text, elapsed in (("", 0.0), ("How do I start?", 6.0))]
    got = js.evaluate("""([rules, cases]) => cases.map(([s, h, text, elapsed]) => [
        ib.blocked(s), ib.statusKey(rules, s), ib.timeLeft(s, elapsed),
        ib.nextMessageCost(rules, s, h, text), ib.messagesLeft(rules, s, h),
        ib.estimateTokens(rules, text), ib.conversation(h), ib.expectedReply(rules, h)])""",
                      [rules, cases])
    for (s, h, text, elapsed), js_result in zip(cases, got, strict=True):
        b = view.blocked(s)
        expected = [{"key": b[0], "sentence": b[1]} if b else None, view.status_key(s),
                    view.time_left(s, elapsed), view.next_message_cost(s, h, text),
                    view.messages_left(s, h), view.estimate_tokens(text), view.conversation(h),
                    view.expected_reply(h)]
        assert js_result == expected, (s, h, text, elapsed)


def test_levels_and_clock_match_view_py(js):
    rules = view.rules()
    percents = [100, 50, 25.01, 25, 10.5, 10, 5.01, 5, 0.5, 0]
    seconds = [0, 0.2, 59.2, 60, 605, 3599.5, 3723]
    got = js.evaluate("""([rules, t, ps, ss]) => [ps.map(p => ib.level(rules, t, p)),
                         ss.map(s => ib.clock(s)), [ib.pct(5, 0), ib.pct(30, 20)]]""",
                      [rules, THRESHOLDS, percents, seconds])
    assert got == [[view.level(p, THRESHOLDS) for p in percents], [view.clock(s) for s in seconds],
                   [view.percent(5, 0), view.percent(30, 20)]]


XSS = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    "[click me](javascript:window.__xss='link')",
    "<a href=\"javascript:window.__xss='a'\">a link</a>",
    "<svg onload=\"window.__xss='svg'\"></svg>",
    "<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>",
    "<div onmouseover=\"window.__xss='hover'\" style=\"position:fixed;inset:0\">cover</div>",
    "<form action=\"javascript:window.__xss='form'\"><button>go</button></form>",
    "```html\n<script>window.__xss='fence'</script>\n```",
]


@pytest.mark.parametrize("payload", XSS)
def test_untrusted_markdown_executes_nothing(js, payload):
    js.evaluate("(md) => ib.renderMarkdown(document.getElementById('out'), md)", payload)
    out = js.locator("#out")
    for a in out.locator("a").all():
        a.click()  # clicking what is left of a link runs nothing either
    out.hover()
    let_handlers_run(js)
    assert js.evaluate("() => window.__xss") is None
    html = out.inner_html()
    for dangerous in ("<script", "<img", "<iframe", "<svg", "<form", "onerror", "onload",
                      "onmouseover", "javascript:"):
        if "```" in payload and dangerous == "<script":
            continue  # shown as escaped text inside the code block: &lt;script
        assert dangerous not in html.lower(), (dangerous, html)


def test_markdown_renders_with_highlighted_code_and_safe_links(js):
    md = ("**Bold** and `code`.\n\n```python\ndef f(x):\n    return x\n```\n\n"
          "[docs](https://docs.python.org/3/)")
    js.evaluate("(md) => ib.renderMarkdown(document.getElementById('out'), md)", md)
    out = js.locator("#out")
    assert out.locator("strong").inner_text() == "Bold"
    assert out.locator("pre code .hljs-keyword").first.inner_text() == "def"
    link = out.locator("a")
    assert link.get_attribute("href") == "https://docs.python.org/3/"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel")
    assert out.locator("pre").count() == 1
