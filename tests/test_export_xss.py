"""Stored XSS in exports (issue 9, item 3): with the known vectors (tests/xss_vectors.py)
in every untrusted field, the .md and the review .ipynb's Markdown hold no HTML, link or
image for any renderer to act on, and the .html has no element, attribute or URL that
could run a script. tests/browser/test_export_xss_browser.py opens the .html in
Chromium."""

from __future__ import annotations

import json
import re

import mistune
import nbformat
import pytest
from markdown_it import MarkdownIt
from xss_vectors import VECTORS, hostile_record

from ib_extension.review import export
from ib_extension.review.inert import inert_markdown

ACTIVE_TOKENS = {"html_block", "html_inline", "link_open", "image"}
# What would run in a browser: script elements, event handlers, script URLs, frames.
# (Inside a real tag: text that merely reads like one is escaped and harmless.)
ACTIVE_HTML = re.compile(r"<script\b|<\w+[^<>]*\s(?:on\w+\s*=|(?:href|src|action|data|"
                         r"background|formaction|xlink:href)\s*=\s*[\"']?\s*"
                         r"(?:javascript|vbscript|data:text/html))"
                         r"|<(?:iframe|object|embed|base|meta|form|svg|math|style)\b", re.I)


@pytest.fixture(scope="module")
def record():
    return hostile_record()


def test_the_corpus_has_fifty_vectors_and_each_is_live_markdown():
    assert len(VECTORS) >= 50
    parser = MarkdownIt("commonmark")
    live = [v for v in VECTORS if ACTIVE_TOKENS & {t.type for t in _all(parser.parse(v))}]
    assert len(live) > 40  # most are HTML or links as written: the corpus does test something


def _all(tokens):
    for tok in tokens:
        yield tok
        yield from _all(tok.children or [])


def assert_inert_markdown(text: str, where: str) -> None:
    """No renderer finds HTML, a link or an image: checked with CommonMark (markdown-it)
    and with mistune, which nbconvert renders Markdown with."""
    found = {t.type for t in _all(MarkdownIt("commonmark").parse(text))} & ACTIVE_TOKENS
    assert not found, (where, found, text[:300])
    rendered = mistune.html(text)
    assert not ACTIVE_HTML.search(rendered), (where, ACTIVE_HTML.search(rendered), text[:300])
    assert "<a " not in rendered and "<img" not in rendered, (where, text[:300])


@pytest.mark.parametrize("vector", VECTORS, ids=range(1, len(VECTORS) + 1))
def test_each_vector_is_made_inert(vector):
    assert_inert_markdown(inert_markdown(vector), vector)


def test_markdown_export_is_inert(record):
    text = export.to_markdown(record)
    assert_inert_markdown(text, "md export")
    assert "alert(1)" in text and "alert(22)" in text  # the vectors are there, as text


def test_review_notebook_is_inert(record):
    nb = nbformat.reads(export.render(record, "ipynb"), as_version=4)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) > len(VECTORS) * 2  # chat both ways and the candidate's cells
    for cell in markdown:
        assert_inert_markdown(cell.source, cell.metadata.get("interview_buddy", {}).get("kind"))
    assert not [c for c in nb.cells if c.cell_type == "raw"]  # nbconvert pastes raw in as HTML
    candidate = [c for c in nb.cells if c.cell_type == "code"
                 and c.metadata.get("interview_buddy", {}).get("kind") == "candidate_cell"]
    kinds = {k for c in candidate for o in c.outputs for k in o.get("data", {})}
    assert kinds <= {"text/plain"}  # html, svg, javascript, markdown, latex and the bad png gone
    assert [c.metadata.get("tags") for c in candidate] == [["ok-tag"]]
    assert "<script" not in json.dumps(nb.metadata)


def test_html_export_has_nothing_that_runs_but_our_charts(record):
    page = export.to_html(record)
    body = page.split(">Grading", 1)[1]  # after the charts, whose plotly.js is ours
    assert ACTIVE_HTML.findall(body) == []
    assert re.findall(r'<a href="(?!#)', body) == []  # no link at all from their text
    assert "alert(22)" in body  # shown as text
