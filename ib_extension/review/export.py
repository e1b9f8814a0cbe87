"""The reviewer's exports of one interview: ipynb, Markdown, JSON, HTML, CSV.

Built from an allowlist of fields (``public_record``), so a secret that slips into the
record — a candidate token on the session dict, a key in an event payload, notebook
metadata — never reaches a file. Content the candidate or the AI controls is made
inert: raw HTML in their Markdown is escaped and their notebook outputs keep only text
and raster images. The HTML export runs no script at all and fetches nothing: its charts
are static SVG, and its page loads no require.js, MathJax or Mermaid.

The challenge comes first. Its answer key (hidden tests, interviewer notes) is only in
an export made with ``answer_key=`` (the interviewer's view of the challenge, from
GET /ib/api/challenges/{id}); exports made to share leave it out.

Everything the export adds to a notebook carries
``metadata["interview_buddy"] = {"schema_version": 1, "kind": ...}``.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from pathlib import Path

import nbformat
from nbformat import v4
from nbformat.v4.nbbase import random_cell_id

from .. import __version__
from ..api.events import CATALOGUE
from . import analytics, records
from .formats import FORMATS, SAFE_NAME, file_name  # noqa: F401 (this module's API)
from .inert import inert_markdown
from .provenance import provenance
from .records import check_record, final_notebook, messages
from .sections import (
    challenge_markdown,
    events_markdown,
    fence,
    grade_markdown,
    message_markdown,
    provenance_markdown,
    summary_markdown,
)

SCHEMA_VERSION = 1
NAMESPACE = "interview_buddy"
HIDE_INPUT_TAG = "ib-hide-input"  # nbconvert does not read source_hidden; it reads tags

# -- what may leave the service -----------------------------------------------------

SESSION_FIELDS = (
    "id",
    "candidate_name",
    "candidate_email",
    "model",
    "assist_policy",
    "status",
    "locked",
    "time_limit_seconds",
    "time_used_seconds",
    "time_left_seconds",
    "deadline",
    "token_budget",
    "tokens_prompt",
    "tokens_completion",
    "tokens_used",
    "tokens_reserved",
    "tokens_left",
    "message_count",
    "created_at",
    "started_at",
    "ended_at",
    "last_activity_at",
    "end_reason",
    "warnings",
    "flags",
    "submitted_at",
)
CHALLENGE_FIELDS = ("id", "title", "difficulty", "category", "statement", "starter_code",
                    "visible_tests")
ANSWER_KEY_FIELDS = ("hidden_tests", "interviewer_notes")
MESSAGE_FIELDS = (
    "id",
    "role",
    "content",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "status",
    "created_at",
    "finished_at",
)
EVENT_FIELDS = ("id", "type", "actor", "at")
# Payload keys kept per event type: the catalogue's choice (a provider error's message is
# dropped there: some OpenAI-compatible servers echo the key they were given).
PAYLOAD_FIELDS = {t: k.exported for t, k in CATALOGUE.items()}
GRADE_FIELDS = ("score", "passed", "total", "duration_seconds", "error")
GRADE_TEST_FIELDS = ("name", "visible", "passed", "message")
# Candidate outputs keep what cannot run: text and raster images (checked to be base64,
# as nbconvert pastes them into an attribute unescaped).
SAFE_MIMETYPES = ("text/plain", "image/png", "image/jpeg")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def _pick(source: dict | None, fields) -> dict:
    source = source or {}
    return {k: source[k] for k in fields if k in source}


def public_record(record, answer_key: dict | None = None) -> dict:
    """The record reduced to the fields an export may contain; the answer key only from
    ``answer_key`` (the interviewer's view of the challenge), never from the record."""
    check_record(record)
    grade = record.get("grade")
    key = {f: str((answer_key or {}).get(f) or "") for f in ANSWER_KEY_FIELDS}
    return {
        "answer_key": key if answer_key is not None else None,
        "session": _pick(record["session"], SESSION_FIELDS),
        "challenge": _pick(records.challenge(record), CHALLENGE_FIELDS) or None,
        "messages": [_pick(m, MESSAGE_FIELDS) for m in messages(record)],
        "events": [_public_event(e) for e in records.events(record)],
        "grade": None
        if grade is None
        else {
            **_pick(grade, GRADE_FIELDS),
            "tests": [_pick(t, GRADE_TEST_FIELDS) for t in grade.get("tests") or []],
        },
        "final_notebook": _public_notebook(final_notebook(record)),
    }


def _public_event(event: dict) -> dict:
    fields = PAYLOAD_FIELDS.get(event["type"], ())
    return {**_pick(event, EVENT_FIELDS), "payload": _pick(event.get("payload"), fields)}


def _public_notebook(nb: dict | None) -> dict | None:
    """A fresh v4 notebook with the candidate's cells: sources, ids, tags, safe outputs."""
    if nb is None:
        return None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the final notebook has no 'cells' list; is it nbformat v4 JSON?")
    meta = nb.get("metadata") or {}
    out = v4.new_notebook(
        metadata={
            k: {f: _plain(v) for f, v in _pick(meta.get(k), ("name", "display_name", "language",
                                                           "version")).items()}
            for k in ("kernelspec", "language_info")
            if isinstance(meta.get(k), dict)
        }
    )
    for cell in nb["cells"]:
        source = _source(cell)
        kind = cell.get("cell_type")
        if records.product_cell(cell):  # ours (the panel cell): its output is a stale repr
            new = v4.new_markdown_cell(PANEL_PLACEHOLDER)
            new.metadata["tags"] = [records.PANEL_TAG]
            if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(cell.get("id") or "")):
                new["id"] = cell["id"]
            out.cells.append(new)
            continue
        if kind == "code":
            new = v4.new_code_cell(
                source,
                execution_count=cell.get("execution_count"),
                outputs=_safe_outputs(cell.get("outputs") or []),
            )
        elif kind == "markdown":
            new = v4.new_markdown_cell(source)
        elif kind == "raw":
            new = v4.new_raw_cell(source)
        else:
            raise ValueError(f"the final notebook has a cell of unknown type {kind!r}")
        if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(cell.get("id") or "")):
            new["id"] = cell["id"]
        tags = (cell.get("metadata") or {}).get("tags")
        if isinstance(tags, list):  # nbconvert writes tags into a class attribute, unescaped
            safe = [t for t in tags if isinstance(t, str) and _TAG.fullmatch(t)]
            if safe:
                new.metadata["tags"] = safe
        out.cells.append(new)
    return json.loads(json.dumps(out))  # plain JSON, as the record holds it


_TAG = re.compile(r"[A-Za-z0-9_-]{1,64}")
PANEL_PLACEHOLDER = ("*Interview Buddy panel: the cell that opened the candidate's chat panel "
                     "(the conversation is below, in time order).*")


def _plain(value) -> str:
    """A metadata value reduced to characters that cannot leave an HTML attribute."""
    return re.sub(r"[^A-Za-z0-9 _.+-]", "", str(value))[:64]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _safe_outputs(outputs: list) -> list:
    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text = _source({"source": out.get("text", "")})
            kept.append(v4.new_output("stream", name=out.get("name", "stdout"), text=text))
        elif kind == "error":
            kept.append(
                v4.new_output(
                    "error",
                    ename=str(out.get("ename", "")),
                    evalue=str(out.get("evalue", "")),
                    traceback=[str(t) for t in out.get("traceback") or []],
                )
            )
        elif kind in ("execute_result", "display_data"):
            data = {
                k: v
                for k, v in _pick(out.get("data"), SAFE_MIMETYPES).items()
                if k == "text/plain" or (isinstance(v, str) and _BASE64.fullmatch(v))
            }
            if data:
                if kind == "execute_result":
                    kept.append(
                        v4.new_output(kind, data=data, execution_count=out.get("execution_count"))
                    )
                else:
                    kept.append(v4.new_output(kind, data=data))
    return kept


def _markdown_cell(source: str, metadata: dict | None = None) -> nbformat.NotebookNode:
    """What ``v4.new_markdown_cell`` makes, without checking each cell against the schema:
    ``to_ipynb`` validates the whole notebook once (a check per cell was a fifth of the
    time of a 1,000-message export)."""
    return nbformat.from_dict({"id": random_cell_id(), "cell_type": "markdown",
                               "source": source, "metadata": metadata or {}})


def _meta(kind: str, **extra) -> dict:
    return {NAMESPACE: {"schema_version": SCHEMA_VERSION, "kind": kind, **extra}}


def _cell_times(pub: dict) -> dict[str, str]:
    """Cell id -> when the candidate first ran it (from activity events, if reported)."""
    times = {}
    for e in pub["events"]:
        cell_id = e["payload"].get("cell_id")
        if e["type"] == "activity.cell_executed" and cell_id and cell_id not in times:
            times[cell_id] = e["at"]
    return times


def _interleave(pub: dict, prov: dict) -> list[tuple]:
    """The candidate's cells with the conversation between them, messages in time order.

    A message comes before the first cell that was run after it or that holds code from
    it (and with it every earlier message); the rest follow the last cell."""
    msgs = pub["messages"]
    order = {m["id"]: i for i, m in enumerate(msgs)}
    times = _cell_times(pub)
    by_index = {c["index"]: c for c in prov["cells"]}
    items, sent = [], 0
    for index, cell in enumerate((pub["final_notebook"] or {}).get("cells") or []):
        cell_prov = by_index.get(index)
        upto = max([order[s] + 1 for s in (cell_prov or {}).get("sources", [])], default=0)
        if cell.get("id") in times:
            ran = records.parse_time(times[cell["id"]])
            upto = max(upto, sum(1 for m in msgs if records.parse_time(m["created_at"]) < ran))
        items += [("message", m) for m in msgs[sent:upto]]
        sent = max(sent, upto)
        items.append(("cell", cell, cell_prov))
    return items + [("message", m) for m in msgs[sent:]]


CHART_TITLES = ("Token usage", "Time", "Conversation")  # as figures.py and svg.py title them


def _chart_outputs(record, plotly: bool = True) -> list[nbformat.NotebookNode]:
    """Each chart as a display output that renders with no server and no internet:
    JupyterLab draws the plotly MIME bundle with the renderer plotly installs (safe, so
    untrusted notebooks too); nbconvert's HTML and other viewers show the static SVG.
    Without ``plotly`` (the HTML export, which shows only the SVG) the bundle is left out,
    and plotly is neither loaded nor run."""
    from . import svg

    who = record["session"].get("candidate_name") or record["session"]["id"]  # svg escapes
    drawings = (svg.token_usage(record, who), svg.time_utilisation_chart(record, who),
                svg.conversation(record, who))
    if not plotly:
        return [
            v4.new_output("display_data", data={
                "image/svg+xml": drawing,
                # the plotly figure's title (figures.py escapes the name in it)
                "text/plain": f"Interview Buddy chart: {title} — {html.escape(who)}",
            })
            for title, drawing in zip(CHART_TITLES, drawings, strict=True)
        ]
    import plotly.io as pio

    from . import figures  # plotly: only exports that draw charts load it

    figs = (figures.fig_token_usage(record), figures.fig_time_utilisation(record),
            figures.fig_message_timeline(record))
    return [
        v4.new_output("display_data", data={
            "application/vnd.plotly.v1+json": json.loads(pio.to_json(fig)),
            "image/svg+xml": drawing,
            "text/plain": f"Interview Buddy chart: {fig.layout.title.text}",
        })
        for fig, drawing in zip(figs, drawings, strict=True)
    ]


def to_ipynb(record, answer_key: dict | None = None) -> nbformat.NotebookNode:
    """The review notebook: summary, the challenge, charts, grading, what happened, then
    the candidate's cells with the conversation interleaved and the provenance of every
    code cell."""
    return _review_notebook(record, answer_key)


def _review_notebook(record, answer_key: dict | None = None,
                     plotly: bool = True) -> nbformat.NotebookNode:
    pub = public_record(record, answer_key)
    summary, prov = analytics.summary(record), provenance(record)
    start = pub["session"].get("started_at")
    nb = v4.new_notebook()
    nb.metadata.update((pub["final_notebook"] or {}).get("metadata") or {})
    nb.metadata["title"] = f"Interview review {pub['session']['id']}"
    nb.metadata.update(_meta("review", session_id=pub["session"]["id"], exported_by=__version__,
                             answer_key=answer_key is not None))
    nb.cells.append(
        _markdown_cell(summary_markdown(pub, summary, prov), metadata=_meta("summary"))
    )
    nb.cells.append(_markdown_cell(challenge_markdown(pub["challenge"], pub["answer_key"]),
                                         metadata=_meta("challenge")))
    charts = v4.new_code_cell(
        "# Charts added by Interview Buddy: static outputs, nothing to run.\n"
        "# Re-running this cell clears them; export the session again to get them back.",
        outputs=_chart_outputs(record, plotly),
        metadata=_meta("analytics"),
    )
    charts.metadata["jupyter"] = {"source_hidden": True}
    charts.metadata["tags"] = [HIDE_INPUT_TAG]
    nb.cells.append(charts)
    nb.cells.append(_markdown_cell(grade_markdown(pub["grade"]), metadata=_meta("grade")))
    nb.cells.append(_markdown_cell(events_markdown(pub["events"], start),
                                         metadata=_meta("events")))
    nb.cells.append(
        _markdown_cell(
            "## The candidate's notebook and the AI conversation\n\n"
            "The candidate's cells as submitted; the conversation with the AI is in time order "
            "between them, each message before the first cell that used it or ran after it.",
            metadata=_meta("section"),
        )
    )
    for item in _interleave(pub, prov):
        if item[0] == "message":
            m = item[1]
            nb.cells.append(
                _markdown_cell(
                    message_markdown(m, start),
                    metadata=_meta("message", message_id=m["id"], role=m["role"]),
                )
            )
            continue
        _, cell, cell_prov = item
        cell = nbformat.from_dict(cell)
        if records.PANEL_TAG in cell.metadata.get("tags", []):  # our placeholder
            cell.metadata.update(_meta("panel"))
            nb.cells.append(cell)
            continue
        if cell.cell_type == "markdown":
            cell.source = inert_markdown(cell.source)
        elif cell.cell_type == "raw":  # nbconvert's HTML pastes a raw cell in unescaped
            cell = _markdown_cell(f"*Raw cell:*\n\n{fence(cell.source, 'text')}",
                                        metadata=cell.metadata)
        cell.metadata.update(_meta("candidate_cell", provenance=cell_prov))
        nb.cells.append(cell)
        if cell_prov is not None:
            nb.cells.append(
                _markdown_cell(
                    provenance_markdown(cell_prov),
                    metadata=_meta("provenance", cell_id=cell.get("id")),
                )
            )
    nbformat.validate(nb)
    return nb


def to_markdown(record, answer_key: dict | None = None) -> str:
    """The review as one Markdown document (no charts: see the ipynb or HTML export)."""
    pub = public_record(record, answer_key)
    summary, prov = analytics.summary(record), provenance(record)
    start = pub["session"].get("started_at")
    parts = [
        summary_markdown(pub, summary, prov),
        challenge_markdown(pub["challenge"], pub["answer_key"]),
        grade_markdown(pub["grade"]),
        events_markdown(pub["events"], start),
        "## The candidate's notebook and the AI conversation",
    ]
    for item in _interleave(pub, prov):
        if item[0] == "message":
            parts.append(message_markdown(item[1], start))
            continue
        _, cell, cell_prov = item
        if records.PANEL_TAG in (cell.get("metadata") or {}).get("tags", []):
            parts.append(_source(cell))
            continue
        parts.append(f"*Candidate's cell ({cell['cell_type']}):*")
        if cell["cell_type"] == "code":
            parts.append(fence(_source(cell)))
            parts.append(provenance_markdown(cell_prov))
        elif cell["cell_type"] == "markdown":
            parts.append(inert_markdown(_source(cell)))
        else:
            parts.append(fence(_source(cell), "text"))
    return "\n\n".join(parts) + "\n"


def to_json(record, answer_key: dict | None = None) -> str:
    """Everything, machine-readable; validates against ``export_schema.json``."""
    pub = public_record(record, answer_key)
    document = {
        "schema_version": SCHEMA_VERSION,
        "kind": "interview_buddy.review",
        "exported_by": __version__,
        **pub,
        "summary": analytics.summary(record),
        "provenance": provenance(record),
        "timelines": {
            "tokens": analytics.token_timeline(record),
            "messages": analytics.message_timeline(record),
            "time": analytics.time_utilisation(record),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


TEMPLATES = Path(__file__).with_name("templates")


def to_html(record, answer_key: dict | None = None) -> str:
    """The review notebook through nbconvert: a page that runs no script and fetches
    nothing (templates/ib_review.html.j2 drops require.js, MathJax and Mermaid; the
    charts are SVG)."""
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
    nb = _PageNotebook(_review_notebook(record, answer_key, plotly=False))  # SVG charts only
    exporter = _review_exporter()(template_name="lab", config=config,
                                  extra_template_paths=[str(TEMPLATES)],
                                  template_file="ib_review.html.j2")
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": html.escape(nb.metadata["title"])}}
    )
    return body


class _PageNotebook(nbformat.NotebookNode):
    """A review notebook made for one page and thrown away after it: nbconvert's exporter
    deep-copies the notebook it is given so as to leave the caller's as it was, a tenth
    of a 1,000-message page's time; this one it may change in place."""

    def __deepcopy__(self, memo):
        return self


_REVIEW_EXPORTER: list[type] = []
INERT_KINDS = {"message", "candidate_cell"}  # cells whose Markdown inert_markdown wrote
# A heading's HTML that nbconvert's XML parse reads as text and a few inline elements:
# text with the entities XML knows, code, emphasis.
_SIMPLE_HEADING = re.compile(r"(?:[^<&]|&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);"
                             r"|</?(?:code|em|strong)>)*")
_TAGS = re.compile(r"<[^>]*>")
_PLAIN_LINK_TEXT = re.compile(r"[^<>&]*")


def _review_exporter() -> type:
    """nbconvert's HTMLExporter, with the same page for less work on long reviews:
    one Markdown parser (and one code highlighter) for every cell without attachments (a
    message has none) instead of a new one per cell; no copies of the notebook and no
    schema check of it after each preprocessor (see ``_preprocess``); and no second pass
    over the finished page (see ``from_notebook_node``)."""
    if _REVIEW_EXPORTER:
        return _REVIEW_EXPORTER[0]
    import mistune
    from jinja2 import FileSystemBytecodeCache, pass_context
    from nbconvert import HTMLExporter  # heavy import, only this format needs it
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    from nbconvert.filters.strings import _convert_header_id
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    class ReviewRenderer(IPythonRenderer):
        """nbconvert's, with one pygments formatter and one lexer per language for the
        whole page: nbconvert looks the lexer up and builds a formatter (its stylesheet
        included) for every code block, a third of the time of highlighting one. A block
        the page already showed (an AI repeating its code, or a question's code quoted
        back) is highlighted once: highlighting is a pure function of code and lexer."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._lexers: dict = {}
            self._formatter = HtmlFormatter()
            self._highlighted: dict[tuple[str, str], str] = {}

        def block_code(self, code: str, info: str | None = None) -> str:
            words = (info or "").strip().split(maxsplit=1)
            if not words or words[0].startswith("mermaid"):
                return super().block_code(code, info)
            lang = words[0]
            if lang not in self._lexers:
                try:
                    self._lexers[lang] = get_lexer_by_name(lang, **self.lexer_options)
                except ClassNotFound:
                    self._lexers[lang] = None
            if self._lexers[lang] is None:  # nbconvert's: the name kept as the first line
                return super().block_code(code, info)
            if (lang, code) not in self._highlighted:
                self._highlighted[lang, code] = highlight(code, self._lexers[lang],
                                                          self._formatter)
            return self._highlighted[lang, code]

        def heading(self, text: str, level: int, **attrs) -> str:
            """nbconvert's (an id from the heading's text, and a link to it), without
            parsing the heading as XML to read its text and writing it out again when
            it is plain text, code or emphasis (every heading of ours); anything else,
            nbconvert's way."""
            if (attrs or self.exclude_anchor_links or not _SIMPLE_HEADING.fullmatch(text)
                    or not _PLAIN_LINK_TEXT.fullmatch(self.anchor_link_text)):
                return super().heading(text, level, **attrs)
            link = html.escape(_convert_header_id(html.unescape(_TAGS.sub("", text))))
            return (f'<h{level} id="{link}">{text}<a class="anchor-link" href="#{link}">'
                    f"{self.anchor_link_text}</a></h{level}>")

    class ReviewHighlighter(Highlight2HTML):
        """nbconvert's ``highlight_code`` (the candidate's code cells), with one lexer and
        one formatter per language for the whole page, and IPython's lexers taken from
        ``ipython_pygments_lexers``, where ``IPython.lib.lexers`` (nbconvert's import)
        takes them from: going through IPython imports IPython itself, a tenth of a
        second spent on nothing else."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._lexers: dict = {}
            self._formatters: dict = {}

        def __call__(self, source, language=None, metadata=None):
            language = language or self.pygments_lexer
            name = language
            if language.startswith("ipython") and metadata and "magics_language" in metadata:
                name = metadata["magics_language"]
            if name not in self._lexers:
                self._lexers[name] = _code_lexer(name)
            if self._lexers[name] is None:  # not found here: nbconvert's own way
                return super().__call__(source, language, metadata)
            if language not in self._formatters:
                self._formatters[language] = HtmlFormatter(
                    cssclass=html.escape(f" highlight hl-{language}"),
                    **self.extra_formatter_options)
            return highlight(source or " ", self._lexers[name], self._formatters[language])

    def _code_lexer(name: str):
        """The lexer nbconvert's _pygments_highlight picks for ``name``; None when it
        would warn (an unknown language) or when its IPython lexers may not be those of
        ipython_pygments_lexers (IPython.lib.lexers re-exports them from IPython 9 on)."""
        try:
            if name in ("ipython2", "ipython3"):
                from importlib.metadata import version

                if int(version("ipython").split(".")[0]) < 9:
                    return None
                import ipython_pygments_lexers as ipl

                return ipl.IPythonLexer() if name == "ipython2" else ipl.IPython3Lexer()
            return get_lexer_by_name(name)
        except (ImportError, ValueError, ClassNotFound):  # PackageNotFoundError: ImportError
            return None

    class BestEffortCache(FileSystemBytecodeCache):
        """A cache that never fails a page: what it cannot write is compiled again."""

        def dump_bytecode(self, bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    class ReviewExporter(HTMLExporter):
        _shared: MarkdownWithMath | None = None
        # CommonMark alone, for inert Markdown (inert.py): its escapes leave nothing for
        # nbconvert's math and plugins (tables, strikethrough, links, task lists) to
        # find, and their rules made a third of parsing a 1,000-message review.
        _inert: mistune.Markdown | None = None
        highlighter = ReviewHighlighter

        def _create_environment(self):
            """nbconvert's, with Jinja's bytecode cache (a folder of this user's own, made
            private by Jinja, under the temporary directory): the page's templates are
            compiled once, not again in each process and for each page, a tenth of the
            time of a 1,000-message page. Jinja recompiles when a template changes."""
            environment = super()._create_environment()
            try:
                environment.bytecode_cache = BestEffortCache()
            except (OSError, RuntimeError):  # no usable folder (Jinja checks its owner)
                pass
            return environment

        def _preprocess(self, nb, resources):
            """Exporter's: each preprocessor in turn, less the checks and copies it adds
            around them for notebooks it does not know. ``to_html`` made this one for this
            page alone and validated it, which also normalised it (unique cell ids), so
            it goes without the two deep copies (of the notebook and of its copy, made by
            ``nbformat.normalize``) and without a schema check after each preprocessor
            (they are nbconvert's own)."""
            for preprocessor in self._preprocessors:
                nb, resources = preprocessor(nb, resources)
            return nb, resources

        def from_notebook_node(self, nb, resources=None, **kw):
            """HTMLExporter's, less its last step: it parses the finished page with
            BeautifulSoup to add ``tabindex="0"`` to each cell's input and each output
            and an ``alt`` to each image without one, half the time of a long review.
            Our template writes them in (templates/ib_review.html.j2)."""
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", self.highlighter(pygments_lexer=lexer, parent=self))
            resources = self._init_resources(resources)
            filter_data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources)
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        @pass_context
        def markdown2html(self, context, source):
            if context.get("cell", {}).get("attachments"):
                return HTMLExporter.markdown2html(self, context, source)
            if self._shared is None:
                path = context.get("resources", {}).get("metadata", {}).get("path", "")
                renderer = ReviewRenderer(
                    escape=False, attachments={}, embed_images=self.embed_images, path=path,
                    anchor_link_text=self.anchor_link_text,
                    exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
                self._shared = MarkdownWithMath(renderer=renderer)
                self._inert = mistune.Markdown(renderer=renderer, block=mistune.BlockParser(),
                                               inline=mistune.InlineParser(hard_wrap=False))
            kind = context.get("cell", {}).get("metadata", {}).get(NAMESPACE, {}).get("kind")
            if kind in INERT_KINDS:
                return self._inert(source)
            return self._shared.render(source)

    _REVIEW_EXPORTER.append(ReviewExporter)
    return ReviewExporter


def to_csv(record, answer_key: dict | None = None) -> str:
    return analytics.to_csv([record])


def schema() -> dict:
    """The JSON export's schema, generated from the wire models (export_schema.py)."""
    from .export_schema import generate

    return generate(SESSION_FIELDS, CHALLENGE_FIELDS, MESSAGE_FIELDS, EVENT_FIELDS,
                    PAYLOAD_FIELDS, GRADE_FIELDS, GRADE_TEST_FIELDS, SCHEMA_VERSION)


def _ipynb_text(nb: nbformat.NotebookNode) -> str:
    """``nbformat.writes(nb)``, the same text, for a notebook ``to_ipynb`` just made and
    validated and nothing else holds: without writes' second validation, and without the
    deep copy it makes so as to leave the caller's notebook as it was (this one is split
    into lines in place, then thrown away): 118 -> 53 ms for a 1,000-message review."""
    from nbformat.v4.nbjson import BytesEncoder
    from nbformat.v4.rwbase import split_lines, strip_transient

    return json.dumps(strip_transient(split_lines(nb)), cls=BytesEncoder, indent=1,
                      sort_keys=True, separators=(",", ": "), ensure_ascii=False)


def preload(fmt: str) -> None:
    """Import what rendering ``fmt`` takes beyond this module (nbconvert for html, plotly
    for ipynb), which ``render`` otherwise imports when it first needs it: for a process
    that has its imports done before it starts (``ib export``)."""
    if fmt == "html":
        _review_exporter()
    elif fmt == "ipynb":
        import plotly.io  # noqa: F401

        from . import figures  # noqa: F401


def render(record, fmt: str, answer_key: dict | None = None) -> str:
    """``record`` as the text of one export format (one of ``FORMATS``); with
    ``answer_key`` (the interviewer's view of its challenge) for interviewers only."""
    renderers = {
        "ipynb": lambda r, k: _ipynb_text(to_ipynb(r, k)),
        "md": to_markdown,
        "json": to_json,
        "html": to_html,
        "csv": to_csv,
    }
    if fmt not in renderers:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderers[fmt](record, answer_key)


def write(record, fmt: str, path, answer_key: dict | None = None) -> Path:
    """Write ``record`` as ``fmt`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render(record, fmt, answer_key), encoding="utf-8")
    return path
