"""export: the reviewer's files, their validity, order, and what they must never hold."""

import csv
import io
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import nbformat
import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, candidate_client, free_port, stop, wait_until_up
from session_records import (
    RecordBuilder,
    code_cell,
    markdown_cell,
    notebook,
    plant_secrets,
    sample_record,
    typical_interview,
)

from ib_extension.review import analytics, export, records
from ib_extension.review.provenance import code_blocks, normalise, provenance

KINDS = {
    "review",
    "summary",
    "challenge",
    "events",
    "panel",
    "analytics",
    "grade",
    "section",
    "message",
    "candidate_cell",
    "provenance",
}


@pytest.fixture(scope="module")
def record():
    return sample_record()


@pytest.fixture(scope="module")
def review(record):
    return export.to_ipynb(record)


def ib(cell_or_nb) -> dict:
    return cell_or_nb.metadata.get(export.NAMESPACE) or {}


def test_ipynb_is_valid_and_round_trips(review):
    nbformat.validate(review)
    assert nbformat.reads(nbformat.writes(review), as_version=4) == review


def test_the_ipynb_text_is_what_nbformat_writes(record):
    """render() writes the notebook without nbformat.writes' copy and second validation:
    the same text."""
    nb = export.to_ipynb(record, {"hidden_tests": "def test_x():\n    pass\n",
                                  "interviewer_notes": "notes"})
    expected = nbformat.writes(nb)
    assert export._ipynb_text(nb) == expected


def test_everything_added_is_namespaced_and_versioned(review):
    assert ib(review) == {
        "schema_version": 1,
        "kind": "review",
        "session_id": "s_test000001",
        "exported_by": export.__version__,
        "answer_key": False,
    }
    for cell in review.cells:
        assert ib(cell)["schema_version"] == 1
        assert ib(cell)["kind"] in KINDS
    assert [ib(c)["kind"] for c in review.cells[:6]] == [
        "summary", "challenge", "analytics", "grade", "events", "section"]


def test_every_message_appears_once_in_time_order(record):
    shuffled = json.loads(json.dumps(record))
    random.Random(3).shuffle(shuffled["messages"])
    cells = export.to_ipynb(shuffled).cells
    shown = [ib(c)["message_id"] for c in cells if ib(c)["kind"] == "message"]
    assert shown == [m["id"] for m in records.messages(record)]
    for m in record["messages"]:
        cell = next(c for c in cells if ib(c).get("message_id") == m["id"])
        assert ib(cell)["role"] == m["role"]
        assert m["content"].splitlines()[0] in cell.source


def test_candidate_cells_keep_their_order_and_carry_provenance(record, review):
    submitted = record["final_notebook"]["cells"]
    candidate = [c for c in review.cells if ib(c)["kind"] == "candidate_cell"]
    assert [c.source for c in candidate] == [c["source"] for c in submitted]
    for cell in candidate:
        if cell.cell_type == "code":
            following = review.cells[review.cells.index(cell) + 1]
            assert ib(following)["kind"] == "provenance"
            assert ib(cell)["provenance"]["lines"] == len(cell.source.splitlines())


def test_a_reply_comes_before_the_cell_that_uses_it(review):
    kinds = [
        (
            ib(c)["kind"],
            ib(c).get("message_id") or (ib(c).get("provenance") or {}).get("best_message_id"),
        )
        for c in review.cells
    ]
    for i, (kind, source) in enumerate(kinds):
        if kind == "candidate_cell" and source:
            assert ("message", source) in kinds[:i]


def test_a_question_comes_before_the_cell_run_after_it():
    b = RecordBuilder()
    b.start(0)
    nb = notebook(code_cell("a = 1"), code_cell("b = 2"))
    first, second = (c["id"] for c in nb["cells"])
    b.activity(50, "cell_executed", cell_id=first)
    b.ask(100, "What is b?", "Just a name.")
    b.activity(150, "cell_executed", cell_id=second)
    b.submit(200, nb)
    order = [ib(c).get("message_id") or c.source for c in export.to_ipynb(b.build()).cells[6:]]
    order = [o for o in order if not o.startswith("🔎")]
    assert order == ["a = 1", "m_0001", "m_0002", "b = 2"]


def test_charts_render_offline_in_lab_and_html(review):
    charts = next(c for c in review.cells if ib(c)["kind"] == "analytics")
    assert export.HIDE_INPUT_TAG in charts.metadata["tags"]
    assert len(charts.outputs) == 3
    for out in charts.outputs:
        assert out.data["application/vnd.plotly.v1+json"]["data"]  # JupyterLab draws this
        assert out.data["image/svg+xml"].startswith("<svg")  # every other viewer this
        assert "text/html" not in out.data  # no plotly.js: 4 MB a chart


def test_grade_table_lists_every_test(record, review):
    grade = next(c for c in review.cells if ib(c)["kind"] == "grade").source
    for t in record["grade"]["tests"]:
        assert t["name"] in grade
    assert "hidden" in grade


def test_json_validates_against_the_schema_and_is_complete(record):
    document = json.loads(export.to_json(record))
    jsonschema.validate(document, export.schema())
    assert [m["id"] for m in document["messages"]] == [m["id"] for m in record["messages"]]
    assert document["summary"] == analytics.summary(record)
    assert len(document["events"]) == len(record["events"])
    nbformat.validate(nbformat.from_dict(document["final_notebook"]))


def test_the_committed_schema_file_is_the_generated_one():
    from ib_extension.review.export_schema import PATH

    assert json.loads(PATH.read_text(encoding="utf-8")) == export.schema(), (
        "regenerate it: python -c 'import json; from ib_extension.review import export; "
        "print(json.dumps(export.schema(), indent=2, ensure_ascii=False))' > " + str(PATH))


def test_schema_documents_exactly_the_allowlist():
    s = export.schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert set(s["$defs"]["session"]["properties"]) == set(export.SESSION_FIELDS)
    assert set(s["$defs"]["message"]["properties"]) == set(export.MESSAGE_FIELDS)
    payload_keys = {k for fields in export.PAYLOAD_FIELDS.values() for k in fields}
    assert (
        set(s["$defs"]["event"]["properties"]["payload"]["propertyNames"]["enum"]) == payload_keys
    )
    assert set(s["properties"]) == set(s["required"])
    document = json.loads(export.to_json(sample_record()))
    document["session"]["candidate_token"] = "x"
    with pytest.raises(jsonschema.ValidationError, match="candidate_token"):
        jsonschema.validate(document, s)


def test_markdown_holds_the_review(record):
    md = export.to_markdown(record)
    for m in record["messages"]:
        assert m["content"].splitlines()[0] in md
    assert md.index("## The challenge") < md.index("Candidate asked")
    assert md.index("Candidate asked") < md.index("*Candidate's cell (code):*")
    assert "Provenance:" in md and "## Grading" in md


def test_html_is_a_page_with_the_charts_and_no_script(record):
    page = export.to_html(record)
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert page.count('data-mime-type="image/svg+xml"') == 3
    # nothing runs, nothing is fetched (the stylesheets' comments may name web pages)
    fetches = r"<script|(?:src|href)\s*=\s*[\"']?(?:https?:)?//|url\(\s*[\"']?(?:https?:)?//|@import"
    assert re.findall(fetches, page, re.I) == []


def test_html_inputs_and_outputs_are_focusable_and_images_described():
    """What nbconvert's HTMLExporter adds by re-parsing its page, our template writes:
    tabindex="0" on every cell input and every output, an alt on every image."""
    from bs4 import BeautifulSoup

    b = RecordBuilder(candidate_name="Ada & <Bo>")
    b.start(0)
    b.ask(10, "How?", "Like this:\n\n```python\nprint(1)\n```")
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="out\n"),
        nbformat.v4.new_output("stream", name="stderr", text="err\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "dot"}),
        nbformat.v4.new_output("display_data", data={"image/jpeg": png}),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad",
                               traceback=["Traceback", "ValueError: bad"]),
    ]
    b.submit(100, notebook(markdown_cell("# Mine"), code_cell("print(1)", outputs=outputs)))
    record = b.build()
    soup = BeautifulSoup(export.to_html(record), "html.parser")
    inputs = soup.select("div.jp-Cell-inputWrapper")
    outs = soup.select("div.jp-OutputArea-output")
    assert len(inputs) > 5 and len(outs) == 3 + 6  # the charts and the candidate's six
    assert all(el.get("tabindex") == "0" for el in inputs + outs)
    images = soup.select("img")
    assert len(images) == 3 + 2 and all(img.get("alt") for img in images)
    charts = next(c for c in export.to_ipynb(record).cells if ib(c)["kind"] == "analytics")
    assert [img["alt"] for img in images[:3]] == [o.data["text/plain"] for o in charts.outputs]


@pytest.mark.parametrize(("default", "language", "metadata"), [
    (None, None, {}), ("python", None, {}), ("ipython3", None, {"magics_language": "bash"}),
    ("ipython2", None, {}), ("python", "no-such-language", {}), ("ipython3", "python", {}),
])
def test_code_cells_are_highlighted_as_nbconvert_does(default, language, metadata):
    """The HTML export highlights the candidate's cells with its own filter (lexers and
    formatters kept for the page, IPython not imported): nbconvert's text."""
    import warnings

    from nbconvert.filters.highlight import Highlight2HTML

    source = "%%bash\nls -la\nx = [i ** 2 for i in range(3)]  # <b>\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unknown language
        ours = export._review_exporter().highlighter(pygments_lexer=default)
        for text in (source, ""):
            assert ours(text, language, metadata) == Highlight2HTML(pygments_lexer=default)(
                text, language, metadata)


def test_the_challenge_comes_first_and_its_answer_key_only_for_interviewers(record, review):
    challenge = next(c for c in review.cells if ib(c)["kind"] == "challenge").source
    assert record["challenge"]["statement"].split("`")[0] in challenge
    assert "def two_sum(nums, target):" in challenge  # the starter code
    key = {"hidden_tests": "def test_secret_hidden_case():\n    assert True\n",
           "interviewer_notes": "Ask about the O(n) approach.", "reference_solution": "SOLVED"}
    for fmt in ("ipynb", "md", "html", "json"):
        shared = export.render(record, fmt)
        assert "test_secret_hidden_case" not in shared and "O(n) approach" not in shared
        private = export.render(record, fmt, answer_key=key)
        assert "test_secret_hidden_case" in private and "O(n) approach" in private
        assert "SOLVED" not in private  # the reference solution is not part of it
    document = json.loads(export.render(record, "json", answer_key=key))
    assert document["answer_key"] == {k: key[k] for k in export.ANSWER_KEY_FIELDS}
    jsonschema.validate(document, export.schema())


def test_events_read_as_the_catalogues_sentences(record, review):
    log = next(c for c in review.cells if ib(c)["kind"] == "events").source
    for sentence in ("Session paused", "Token budget extended by 5,000",
                     "Warning: 25 % of the token budget left", "Graded: 67 % (2/3 tests)"):
        assert sentence in log
    assert "session.paused" not in log  # sentences, not type names


def test_the_panel_cell_is_a_placeholder_and_nobodys_code():
    from ib_extension.review.records import PANEL_TAG

    panel = code_cell("from ib_extension.candidate.panel import show_panel\npanel = show_panel()",
                      metadata={"ib": {"role": "panel"}, "tags": [PANEL_TAG]},
                      outputs=[nbformat.v4.new_output(
                          "execute_result", data={"text/plain": "<ChatPanel: 19:32 left>"},
                          execution_count=1)])
    b = RecordBuilder()
    b.start(0)
    b.submit(100, notebook(panel, code_cell("x = 1")))
    record = b.build()
    assert [c["lines"] for c in provenance(record)["cells"]] == [1]  # only the candidate's
    cells = export.to_ipynb(record).cells
    placeholder = next(c for c in cells if ib(c)["kind"] == "panel")
    assert placeholder.cell_type == "markdown" and "Interview Buddy panel" in placeholder.source
    for fmt in ("ipynb", "md", "html"):
        text = export.render(record, fmt)
        assert "ChatPanel" not in text and "show_panel" not in text


def test_csv_is_the_summary_row(record):
    rows = list(csv.DictReader(io.StringIO(export.to_csv(record))))
    assert len(rows) == 1 and rows[0]["session_id"] == record["session"]["id"]


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_no_secret_reaches_any_format(fmt, tmp_path):
    record = sample_record()
    secrets = plant_secrets(record)
    assert all(s in json.dumps(record) for s in secrets)
    text = export.write(record, fmt, tmp_path / f"review.{fmt}").read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in text
    assert record["messages"][0]["content"].splitlines()[0] in text or fmt == "csv"


ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "[plain](javascript:alert(3))",
    "[entity](jav&#x61;script:alert(4))",
    "[escaped](javascript\\:alert(5))",
    "[ref]\n\n[ref]: JavaScript:alert(6)",
    "<javascript:alert(7)>",
    "\\`<script>alert(8)</script>`",
    "``<script>alert(9)</script>`",
    "``` `not a fence`\n<script>alert(10)</script>\n```",
    "- item\n  ```\n<script>alert(11)</script>\n```",
    "> ```\n> <script>alert(12)</script>",
    "&lt;script&gt;alert(13)&lt;/script&gt;",
]


def test_candidate_and_ai_html_is_made_inert():
    b = RecordBuilder()
    b.start(0)
    for i, attack in enumerate(ATTACKS):
        b.ask(10 + i, attack, attack)
    outputs = [
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": d})
        for d in (
            {"text/html": "<script>alert(14)</script>", "text/plain": "shown"},
            {"image/png": 'AAAA" onerror="alert(15)', "text/plain": "picture"},
        )
    ]
    cells = [markdown_cell(a) for a in ATTACKS] + [code_cell("x = 1", outputs=outputs)]
    b.submit(100, notebook(*cells))
    record = b.build()
    page = export.to_html(record)
    # What the browser would run: script elements, event handlers, javascript: URLs.
    body = page.split(">Grading", 1)[1]  # after the charts, whose plotly.js is ours
    assert (
        re.findall(r"<script>\s*alert|<\w+[^>]*\son\w+=|(?:href|src)=\W*javascript", body, re.I)
        == []
    )
    assert re.findall(r'<a href="(?!#)', body) == []  # no link at all from their text
    assert "shown" in page and "picture" in page


def test_code_keeps_its_text():
    text = "Is `a < b` true?\n\n```python\nif a < b and xs[0]:\n    pass\n```\nSee [docs]."
    inert = export.inert_markdown(text)
    assert "`a < b`" in inert and "if a < b and xs[0]:" in inert
    assert "\\[docs\\]" in inert and "&lt;" not in inert.split("```")[1]


def test_exporting_imports_neither_pydantic_nor_ipython(record, tmp_path):
    """`ib export` is a process of its own, which pays for every import on every export:
    the review side reads the event catalogue without its payload models (pydantic), and
    highlights code without going through IPython."""
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    code = ("import json, sys; from ib_extension.review import export; "
            f"r = json.load(open({str(path)!r})); "
            "[export.render(r, f) for f in ('ipynb', 'html', 'md', 'json', 'csv')]; "
            "print(sorted(m for m in ('pydantic', 'IPython') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="choose one of ipynb, md, json, html, csv"):
        export.write(sample_record(), "pdf", tmp_path / "x.pdf")


def test_review_without_notebook_or_grade():
    b = RecordBuilder()
    b.start(0)
    b.ask(5, "hello?", "hi")
    b.end(60)
    record = b.build()
    review = export.to_ipynb(record)
    assert [ib(c)["kind"] for c in review.cells][-2:] == ["message", "message"]
    assert "Not graded." in export.to_markdown(record)
    jsonschema.validate(json.loads(export.to_json(record)), export.schema())


# -- in a real browser, with every request off this machine refused ------------------

CHARTS_DRAWN = "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3"
SVG_CHARTS_DRAWN = """() => {
  const charts = [...document.querySelectorAll('[data-mime-type="image/svg+xml"] img')];
  return charts.length === 3 && charts.every(img => img.complete && img.naturalWidth > 600);
}"""
MAX_EXPORT_BYTES = 1_500_000


@pytest.fixture
def offline_page():
    """A Chromium page that can reach files and loopback only, and records script errors
    and every request that failed (a refused one included)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` or set IB_CHROMIUM.")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
        page.errors, page.failed = [], []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("requestfailed", lambda r: page.failed.append(r.url))
        yield page
        browser.close()


def test_a_typical_interviews_exports_are_small():
    record = typical_interview()
    for fmt in ("ipynb", "html"):
        size = len(export.render(record, fmt).encode("utf-8"))
        assert size < MAX_EXPORT_BYTES, f"the {fmt} export is {size:,} bytes"


@pytest.mark.browser
def test_html_export_opens_offline_with_no_request_and_draws_its_charts(tmp_path, offline_page):
    path = export.write(typical_interview(), "html", tmp_path / "review.html")
    offline_page.route(re.compile(r"^(?!file:)"), lambda route: route.abort())  # files only
    offline_page.goto(path.as_uri(), wait_until="load")
    offline_page.wait_for_function(SVG_CHARTS_DRAWN)
    assert offline_page.failed == [] and offline_page.errors == []
    assert offline_page.locator("script").count() == 0


@pytest.mark.browser
def test_the_offline_check_sees_a_request(tmp_path, offline_page):
    """The harness is not blind: a page that fetches from the network is caught."""
    html = export.to_html(sample_record()).replace(
        "</head>", '<link rel="stylesheet" href="https://cdn.example.com/x.css"></head>')
    path = tmp_path / "fetches.html"
    path.write_text(html, encoding="utf-8")
    offline_page.route(re.compile(r"^(?!file:)"), lambda route: route.abort())
    offline_page.goto(path.as_uri(), wait_until="load")
    assert offline_page.failed == ["https://cdn.example.com/x.css"]


@pytest.mark.browser
def test_jupyterlab_draws_the_charts_of_the_untrusted_notebook_offline(
    record, tmp_path, offline_page
):
    export.write(record, "ipynb", tmp_path / "review.ipynb")
    port, token = free_port(), "review-test-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/api/status?token={token}", proc)
        offline_page.goto(f"{url}/lab/tree/review.ipynb?token={token}")
        offline_page.wait_for_function(CHARTS_DRAWN)
    finally:
        stop(proc)


# -- a record from the real service ----------------------------------------------------


async def test_exports_of_a_record_the_service_kept(
    make_session, aio_interviewer, base_url, clock, tmp_path
):
    created = await make_session(time_limit_seconds=1800, token_budget=20000)
    sid, token = created["id"], created["candidate_token"]
    llm = candidate_client(base_url, token)
    clock.advance(30)
    reply = await llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "How do I check a palindrome?"}]
    )
    code = code_blocks(reply.choices[0].message.content)[0]
    assert (await aio_interviewer.post(f"/ib/api/sessions/{sid}/pause")).status_code == 200
    clock.advance(120)
    assert (await aio_interviewer.post(f"/ib/api/sessions/{sid}/resume")).status_code == 200
    clock.advance(60)
    nb = notebook(code_cell(code), code_cell("print('mine')"))
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as candidate:
        submitted = await candidate.post("/ib/api/me/submit", json={"notebook": nb})
    assert submitted.status_code < 300, submitted.text
    r = await aio_interviewer.get(f"/ib/api/sessions/{sid}/record")
    assert r.status_code == 200, r.text
    record = r.json()

    summary = analytics.summary(record)
    assert (summary["time_paused_seconds"], summary["messages_user"]) == (120, 1)
    assert summary["time_used_seconds"] == record["session"]["time_used_seconds"]
    assert summary["tokens_prompt"] == record["session"]["tokens_prompt"] > 0
    assert summary["tokens_completion"] == record["session"]["tokens_completion"] > 0
    assert provenance(record)["cells"][0]["ai_unchanged"] == len(normalise(code))
    for fmt in export.FORMATS:
        text = export.write(record, fmt, tmp_path / f"review.{fmt}").read_text(encoding="utf-8")
        assert token not in text
    document = json.loads((tmp_path / "review.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, export.schema())
    review = nbformat.read(tmp_path / "review.ipynb", as_version=4)
    assert [ib(c)["kind"] for c in review.cells if ib(c)["kind"] == "message"] == ["message"] * 2


def test_only_a_fence_at_the_start_of_a_line_is_trusted_as_code():
    # Inside a list, CommonMark ends the code at the first unindented line; renderers
    # disagree on where, so such a fence does not protect its content from escaping.
    inert = export.inert_markdown("- item\n  ```\n<script>alert(1)</script>\n```")
    assert "<script>" not in inert
    assert "<script>" in export.inert_markdown("```\n<script>alert(1)</script>\n```")


def test_html_pages_after_the_first_compile_no_template(record, monkeypatch):
    """The page's Jinja templates go through Jinja's bytecode cache: compiled by the first
    page (or an earlier process), loaded by the next."""
    import jinja2

    export.to_html(record)
    compiled = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *a, **kw: compiled.append(a) or real(self, *a, **kw))
    page = export.to_html(record)
    assert compiled == [] and page.lstrip().lower().startswith("<!doctype html>")


def test_html_messages_render_as_commonmark():
    """A message's (inert) Markdown is drawn as CommonMark: a dollar sign starts no
    formula that would show inert.py's escapes, and a colon starts no definition list."""
    b = RecordBuilder()
    b.start(0)
    b.ask(10, "Is $a*b$ the cost?", "Term\n: yes, $x_1 * 2$ when n > 1")
    page = export.to_html(b.build())
    assert "$a*b$" in page and "$x_1 * 2$" in page and "\\*" not in page
    assert "<dl>" not in page and "Term\n: yes" in page
