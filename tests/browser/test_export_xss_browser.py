"""The HTML export, with every known XSS vector in every untrusted field
(tests/xss_vectors.py), opened in Debian's headless Chromium: no script of theirs runs.

Each vector calls alert(N): a dialog would be a script that ran. The page is also
searched for what could run later (event handlers, script URLs) and its script elements
are counted against an export of the same session with harmless text."""

from __future__ import annotations

from session_records import RecordBuilder, notebook
from xss_vectors import hostile_record

from ib_extension.review import export

FIND_ACTIVE = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = a.value.trim().toLowerCase();
      if (a.name.startsWith('on') || (['href', 'src', 'action', 'formaction', 'data',
          'xlink:href', 'background', 'srcdoc'].includes(a.name)
          && /^(javascript|vbscript|data:text\\/html)/.test(v.replace(/\\s/g, ''))))
        bad.push(el.tagName + ' ' + a.name + '=' + a.value.slice(0, 60));
    }
  }
  return bad;
}"""


def open_export(page, tmp_path, html: str, name: str) -> list[str]:
    """Load `html` from a file; return the messages of the dialogs it opened."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    path = tmp_path / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("document.readyState === 'complete'")
    page.mouse.move(300, 300)  # hover handlers, had any survived
    return dialogs


def benign_record() -> dict:
    b = RecordBuilder()
    b.start(0)
    b.ask(10, "How do I sort?", "Use sorted().")
    b.submit(200, notebook())
    return b.build()


def test_no_script_of_theirs_runs_in_the_html_export(page, tmp_path, screenshot):
    dialogs = open_export(page, tmp_path, export.to_html(hostile_record()), "hostile")
    screenshot("hostile")
    assert dialogs == []
    assert page.evaluate(FIND_ACTIVE) == []
    scripts = page.locator("script").count()
    assert "alert(22)" in page.inner_text("body")  # the vectors are on the page, as text

    page.goto("about:blank")
    open_export(page, tmp_path, export.to_html(benign_record()), "benign")
    assert scripts == page.locator("script").count()  # only the page's and plotly's own


def test_the_check_sees_a_script_that_runs(page, tmp_path):
    """The harness is not blind: one vector pasted in unescaped opens its dialog."""
    html = export.to_html(benign_record()).replace(
        "</body>", '<img src="x" onerror="alert(999)"></body>')
    assert open_export(page, tmp_path, html, "control") == ["999"]
    assert page.evaluate(FIND_ACTIVE) == ['IMG onerror=alert(999)']
