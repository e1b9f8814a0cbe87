"""The reviewer's exports of one interview: ipynb, Markdown, JSON, HTML, CSV.

Built from an allowlist of fields (``public_record``), so a secret that slips into the
record — a candidate token on the session dict, a key in an event payload, notebook
metadata — never reaches a file. Content the candidate or the AI controls is made
inert: raw HTML in their Markdown is escaped and their notebook outputs keep only text
and raster images, so opening the HTML export runs no script but our charts.

Everything the export adds to a notebook carries
``metadata["interview_buddy"] = {"schema_version": 1, "kind": ...}``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat
from nbformat import v4

from .. import __version__
from ..api.events import CATALOGUE
from ..api.models import score_text
from . import analytics, records
from .provenance import closes_fence, opens_fence, provenance
from .records import check_record, final_notebook, messages

SCHEMA_VERSION = 1
NAMESPACE = "interview_buddy"
FORMATS = ("ipynb", "md", "json", "html", "csv")
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
CHALLENGE_FIELDS = ("id", "title", "difficulty", "category", "statement", "starter_code")
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


def public_record(record) -> dict:
    """The record reduced to the fields an export may contain."""
    check_record(record)
    grade = record.get("grade")
    return {
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
            k: _pick(meta.get(k), ("name", "display_name", "language", "version"))
            for k in ("kernelspec", "language_info")
            if meta.get(k)
        }
    )
    for cell in nb["cells"]:
        source = _source(cell)
        kind = cell.get("cell_type")
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
        if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
            new.metadata["tags"] = tags
        out.cells.append(new)
    return json.loads(json.dumps(out))  # plain JSON, as the record holds it


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


# -- making candidate and AI text inert -------------------------------------------

# A code span as CommonMark finds one: a whole backtick run (not escaped) closed by a run
# of the same length on the same line. Spans over several lines are escaped like text.
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`).+?(?<!`)\1(?!`)")


def inert_markdown(text: str) -> str:
    """Markdown someone else wrote, unable to run anything in a reviewer's browser.

    Outside code, ``<`` and ``]`` become entities: no raw HTML, no autolinks, no links
    or images at all (so no ``javascript:`` URL, however spelt). Entities never turn
    back into syntax, which makes this robust where a list of bad schemes is not.
    Code keeps its text: a fence opened at the start of a line, where nothing can end
    it but its closing fence, and code spans. Anything unsure is treated as text."""
    out, fence = [], None
    for line in text.splitlines():
        if fence is None and not line.startswith(" ") and opens_fence(line):
            fence = opens_fence(line)
        elif fence is not None:
            fence = None if closes_fence(line, fence) else fence
        else:
            parts, last = [], 0
            for span in _CODE_SPAN.finditer(line):
                parts += [_inert_text(line[last : span.start()]), span.group(0)]
                last = span.end()
            line = "".join(parts) + _inert_text(line[last:])
        out.append(line)
    return "\n".join(out)


def _inert_text(text: str) -> str:
    return text.replace("<", "&lt;").replace("]", "&#93;")


def _fence(code: str, lang: str = "python") -> str:
    """A fenced block longer than any backtick run inside ``code``."""
    ticks = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", code)), default=0))
    return f"{ticks}{lang}\n{code}\n{ticks}"


def _cell_text(text) -> str:
    """A table cell: one line, no pipes."""
    return inert_markdown(" ".join(str(text).split())).replace("|", "\\|")


# -- the review, once, for every format ---------------------------------------------


def _meta(kind: str, **extra) -> dict:
    return {NAMESPACE: {"schema_version": SCHEMA_VERSION, "kind": kind, **extra}}


def _duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h " if hours else "") + f"{rest // 60}m {rest % 60:02d}s"


def _percent(share) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def _clock(stamp: str | None) -> str:
    return "–" if not stamp else records.parse_time(stamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary_markdown(pub: dict, summary: dict, prov: dict) -> str:
    s, chal = pub["session"], pub["challenge"] or {}
    who = _cell_text(s.get("candidate_name") or s["id"])
    title = _cell_text(chal.get("title") or chal.get("id") or "no challenge")
    rows = [
        ("Candidate", who),
        ("Challenge", f"{title} ({_cell_text(chal.get('difficulty') or '–')})"),
        ("Session", f"`{s['id']}` · {s.get('status')} · ended by {s.get('end_reason') or '–'}"),
        ("Model", _cell_text(s.get("model") or "–")),
        ("Started", _clock(s.get("started_at"))),
        (
            "Active time",
            f"{_duration(summary['active_seconds'])} of "
            f"{_duration(summary['time_limit_seconds'])} (paused "
            f"{_duration(summary['paused_seconds'])} in {summary['pauses']} pause"
            f"{'' if summary['pauses'] == 1 else 's'})",
        ),
        (
            "Tokens",
            f"{summary['tokens_total']:,} of {summary['token_budget'] or 0:,} "
            f"({summary['tokens_prompt']:,} prompt, "
            f"{summary['tokens_completion']:,} completion)",
        ),
        (
            "Questions to the AI",
            f"{summary['messages_user']}, first after "
            f"{_duration(summary['first_question_after_seconds'])}",
        ),
        ("AI time share", _percent(summary["ai_time_share"])),
        (
            "Final code from the AI",
            "no final notebook"
            if not prov["has_notebook"]
            else f"{_percent(prov['ai_share'])} of {prov['lines']} lines "
            f"({prov['ai_unchanged']} unchanged, {prov['ai_modified']} modified)",
        ),
        (
            "Refusals · warnings · injection flags",
            f"{summary['refusals']} · {summary['warnings']} · {summary['injection_flags']}",
        ),
        (
            "Score",
            "not graded"
            if summary["score"] is None
            else f"{score_text(summary['score'])} ({summary['tests_passed']}/"
                 f"{summary['tests_total']} tests)",
        ),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"# Interview review: {who} — {title}\n\n| | |\n|---|---|\n{table}\n"


def _grade_markdown(grade: dict | None) -> str:
    if grade is None:
        return "## Grading\n\nNot graded."
    lines = [
        f"## Grading\n\nScore **{score_text(grade.get('score'))}**: {grade.get('passed')} of "
        f"{grade.get('total')} tests passed in {grade.get('duration_seconds') or 0:.1f} s."
    ]
    if grade.get("error"):
        lines.append(f"\nThe grader reported an error:\n\n{_fence(str(grade['error']), 'text')}")
    if grade["tests"]:
        lines.append("\n| test | visible to candidate | result | message |\n|---|---|---|---|")
        for t in grade["tests"]:
            visible = "yes" if t.get("visible") else "hidden"
            result = "✅ passed" if t.get("passed") else "❌ failed"
            lines.append(
                f"| {_cell_text(t.get('name', ''))} | {visible} | {result} "
                f"| {_cell_text(t.get('message') or '')} |"
            )
    return "\n".join(lines)


def _message_markdown(m: dict, start: str | None) -> str:
    since = ""
    if start:
        elapsed = records.parse_time(m["created_at"]) - records.parse_time(start)
        since = f" (+{_duration(elapsed.total_seconds())})"
    if m["role"] == "user":
        head = (
            f"### 🧑‍💻 Candidate asked · {_clock(m['created_at'])}{since} · "
            f"`{m.get('prompt_tokens') or 0} prompt tokens`"
        )
    else:
        head = (
            f"### 🤖 AI replied · {(m.get('latency_ms') or 0) / 1000:.1f} s · "
            f"`{m.get('completion_tokens') or 0} completion tokens`"
        )
        if m.get("status") not in (None, "complete"):
            head += f" · ⚠️ reply {m['status']}"
    # Quoted, so that a reply's code blocks never look like the candidate's cells.
    content = inert_markdown(m.get("content") or "")
    quoted = "\n".join(f"> {line}" if line else ">" for line in content.splitlines())
    return f"{head}\n\n{quoted}"


def _provenance_markdown(p: dict) -> str:
    if not p["lines"]:
        return "🔎 *Provenance: no code.*"
    text = (
        f"🔎 *Provenance: {p['lines']} lines — {p['ai_unchanged']} from the AI unchanged, "
        f"{p['ai_modified']} modified, {p['candidate']} written by the candidate"
    )
    if p["best_message_id"]:
        text += (
            f"; closest AI block in reply `{p['best_message_id']}` "
            f"({_percent(p['similarity'])} similar)"
        )
    return text + ".*"


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


def _figures(record) -> list:
    from . import figures  # plotly: only exports that draw charts load it

    return [
        figures.fig_token_usage(record),
        figures.fig_time_utilisation(record),
        figures.fig_message_timeline(record),
    ]


def _figure_output(fig, index: int) -> nbformat.NotebookNode:
    """A plotly figure as a display output that renders with no server and no internet:
    JupyterLab draws the plotly MIME bundle with the renderer plotly installs (safe, so
    untrusted notebooks too); nbconvert's HTML uses the HTML, which carries plotly.js —
    in the first chart only, the later ones reuse it from the page."""
    import plotly.io as pio

    from .figures import FIGURE_HEIGHT

    height = fig.layout.height or FIGURE_HEIGHT
    page = pio.to_html(
        fig,
        include_plotlyjs=index == 0,
        full_html=False,
        div_id=f"ib-chart-{index}",
        default_height=f"{height}px",
        config={"displaylogo": False},
    )
    return v4.new_output(
        "display_data",
        data={
            "application/vnd.plotly.v1+json": json.loads(pio.to_json(fig)),
            "text/html": page,
            "text/plain": f"<Interview Buddy chart: {fig.layout.title.text}>",
        },
    )


def to_ipynb(record) -> nbformat.NotebookNode:
    """The review notebook: summary, charts, grading, then the candidate's cells with the
    conversation interleaved and the provenance of every code cell."""
    pub = public_record(record)
    summary, prov = analytics.summary(record), provenance(record)
    nb = v4.new_notebook()
    nb.metadata.update((pub["final_notebook"] or {}).get("metadata") or {})
    nb.metadata["title"] = f"Interview review {pub['session']['id']}"
    nb.metadata.update(_meta("review", session_id=pub["session"]["id"], exported_by=__version__))
    nb.cells.append(
        v4.new_markdown_cell(_summary_markdown(pub, summary, prov), metadata=_meta("summary"))
    )
    charts = v4.new_code_cell(
        "# Charts added by Interview Buddy: static outputs, nothing to run.\n"
        "# Re-running this cell clears them; export the session again to get them back.",
        outputs=[_figure_output(f, i) for i, f in enumerate(_figures(record))],
        metadata=_meta("analytics"),
    )
    charts.metadata["jupyter"] = {"source_hidden": True}
    charts.metadata["tags"] = [HIDE_INPUT_TAG]
    nb.cells.append(charts)
    nb.cells.append(v4.new_markdown_cell(_grade_markdown(pub["grade"]), metadata=_meta("grade")))
    nb.cells.append(
        v4.new_markdown_cell(
            "## The candidate's notebook and the AI conversation\n\n"
            "The candidate's cells as submitted; the conversation with the AI is in time order "
            "between them, each message before the first cell that used it or ran after it.",
            metadata=_meta("section"),
        )
    )
    start = pub["session"].get("started_at")
    for item in _interleave(pub, prov):
        if item[0] == "message":
            m = item[1]
            nb.cells.append(
                v4.new_markdown_cell(
                    _message_markdown(m, start),
                    metadata=_meta("message", message_id=m["id"], role=m["role"]),
                )
            )
            continue
        _, cell, cell_prov = item
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "markdown":
            cell.source = inert_markdown(cell.source)
        cell.metadata.update(_meta("candidate_cell", provenance=cell_prov))
        nb.cells.append(cell)
        if cell_prov is not None:
            nb.cells.append(
                v4.new_markdown_cell(
                    _provenance_markdown(cell_prov),
                    metadata=_meta("provenance", cell_id=cell.get("id")),
                )
            )
    nbformat.validate(nb)
    return nb


def to_markdown(record) -> str:
    """The review as one Markdown document (no charts: see the ipynb or HTML export)."""
    pub = public_record(record)
    summary, prov = analytics.summary(record), provenance(record)
    parts = [
        _summary_markdown(pub, summary, prov),
        _grade_markdown(pub["grade"]),
        "## The candidate's notebook and the AI conversation",
    ]
    start = pub["session"].get("started_at")
    for item in _interleave(pub, prov):
        if item[0] == "message":
            parts.append(_message_markdown(item[1], start))
            continue
        _, cell, cell_prov = item
        parts.append(f"*Candidate's cell ({cell['cell_type']}):*")
        if cell["cell_type"] == "code":
            parts.append(_fence(_source(cell)))
            parts.append(_provenance_markdown(cell_prov))
        elif cell["cell_type"] == "markdown":
            parts.append(inert_markdown(_source(cell)))
        else:
            parts.append(_fence(_source(cell), "text"))
    return "\n\n".join(parts) + "\n"


def to_json(record) -> str:
    """Everything, machine-readable; validates against ``export_schema.json``."""
    pub = public_record(record)
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


def to_html(record) -> str:
    """The review notebook through nbconvert; charts included, opens offline."""
    from nbconvert import HTMLExporter  # heavy import, only this format needs it
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
    nb = to_ipynb(record)
    body, _ = HTMLExporter(template_name="lab", config=config).from_notebook_node(
        nb, resources={"metadata": {"name": html.escape(nb.metadata["title"])}}
    )
    return body


def to_csv(record) -> str:
    return analytics.to_csv([record])


def schema() -> dict:
    """The JSON export's schema, generated from the wire models (export_schema.py)."""
    from .export_schema import generate

    return generate(SESSION_FIELDS, CHALLENGE_FIELDS, MESSAGE_FIELDS, EVENT_FIELDS,
                    PAYLOAD_FIELDS, GRADE_FIELDS, GRADE_TEST_FIELDS, SCHEMA_VERSION)


SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(session_id: str, fmt: str) -> str:
    """`<session id>.<format>`, with anything that could leave the folder replaced."""
    return f"{SAFE_NAME.sub('_', session_id) or 'session'}.{fmt}"


def render(record, fmt: str) -> str:
    """``record`` as the text of one export format (one of ``FORMATS``)."""
    renderers = {
        "ipynb": lambda r: nbformat.writes(to_ipynb(r)),
        "md": to_markdown,
        "json": to_json,
        "html": to_html,
        "csv": to_csv,
    }
    if fmt not in renderers:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderers[fmt](record)


def write(record, fmt: str, path) -> Path:
    """Write ``record`` as ``fmt`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render(record, fmt), encoding="utf-8")
    return path
