"""The parts of a review, as Markdown every export format shares: the summary, the
challenge (and, for interviewers, its answer key), grading, the event log, each message
and each cell's provenance. Text the candidate, the AI or an interviewer wrote goes
through review/inert.py; numbers come from analytics.summary and the record.
"""

from __future__ import annotations

import re

from ..api.events import describe
from ..api.wording import score_text
from . import records
from .inert import escape_text, inert_markdown


def fence(code: str, lang: str = "python") -> str:
    """A fenced block longer than any backtick run inside ``code``."""
    ticks = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", code)), default=0))
    return f"{ticks}{lang}\n{code}\n{ticks}"


def _cell_text(text) -> str:
    """A table cell: one line of plain text (pipes escaped with the rest)."""
    return escape_text(" ".join(str(text).split()))


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


def summary_markdown(pub: dict, summary: dict, prov: dict) -> str:
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
            "Time used",
            f"{_duration(summary['time_used_seconds'])} of "
            f"{_duration(summary['time_limit_seconds'])} (paused "
            f"{_duration(summary['time_paused_seconds'])} in {summary['pauses']} pause"
            f"{'' if summary['pauses'] == 1 else 's'})",
        ),
        (
            "Tokens billed",
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


def grade_markdown(grade: dict | None) -> str:
    if grade is None:
        return "## Grading\n\nNot graded."
    lines = [
        f"## Grading\n\nScore **{score_text(grade.get('score'))}**: {grade.get('passed')} of "
        f"{grade.get('total')} tests passed in {grade.get('duration_seconds') or 0:.1f} s."
    ]
    if grade.get("error"):
        lines.append(f"\nThe grader reported an error:\n\n{fence(str(grade['error']), 'text')}")
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


def message_markdown(m: dict, start: str | None) -> str:
    since = ""
    if start:
        elapsed = records.parse_time(m["created_at"]) - records.parse_time(start)
        since = f" (+{_duration(elapsed.total_seconds())})"
    if m["role"] == "user":
        head = f"### 🧑‍💻 Candidate asked · {_clock(m['created_at'])}{since}"
    else:
        prompt, completion = records.billed(m)
        head = (
            f"### 🤖 AI replied · {(m.get('latency_ms') or 0) / 1000:.1f} s · "
            f"`{prompt} prompt + {completion} completion tokens billed`"
        )
        if m.get("status") not in (None, "complete"):
            head += f" · ⚠️ reply {m['status']}"
    # Quoted, so that a reply's code blocks never look like the candidate's cells.
    content = inert_markdown(m.get("content") or "")
    quoted = "\n".join(f"> {line}" if line else ">" for line in content.splitlines())
    return f"{head}\n\n{quoted}"


def provenance_markdown(p: dict) -> str:
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




def challenge_markdown(chal: dict | None, answer_key: dict | None) -> str:
    """The challenge as the candidate got it; its answer key only when given."""
    if not chal:
        return "## The challenge\n\nThis session had no challenge text."
    title = _cell_text(chal.get("title") or chal.get("id") or "Challenge")
    facts = " · ".join(_cell_text(v) for v in (chal.get("difficulty"), chal.get("category"),
                                               chal.get("id")) if v)
    parts = [f"## The challenge: {title}" + (f"\n\n*{facts}*" if facts else ""),
             inert_markdown(chal.get("statement") or "")]
    if chal.get("starter_code"):
        parts.append("### Starter code\n\n" + fence(chal["starter_code"]))
    if chal.get("visible_tests"):
        parts.append("### Tests the candidate could see\n\n" + fence(chal["visible_tests"]))
    if answer_key is not None:
        parts.append("### For interviewers only\n\nThe candidate never saw this part.")
        parts.append("#### Hidden tests\n\n" + (fence(answer_key["hidden_tests"])
                                                  if answer_key["hidden_tests"] else "None."))
        parts.append("#### Interviewer notes\n\n" + (inert_markdown(answer_key["interviewer_notes"])
                                                      or "None."))
    return "\n\n".join(p for p in parts if p)


# Autosaves come every few seconds: the log counts them instead of listing each one.
UNLISTED = ("activity.snapshot",)


def events_markdown(events: list[dict], start: str | None) -> str:
    """Every event as the catalogue's sentence, in time order (the same sentences the
    monitor and the replay show)."""
    rows, unlisted = [], 0
    for e in events:
        if e["type"] in UNLISTED:
            unlisted += 1
            continue
        rows.append(f"| {_since(e['at'], start)} | {_cell_text(e.get('actor') or '')} | "
                    f"{_cell_text(describe(e))} |")
    if not rows:
        return "## What happened\n\nNo events."
    note = (f"\n\nThe notebook was also saved {unlisted} time{'s' * (unlisted != 1)} "
            "(autosave); the replay steps through each save." if unlisted else "")
    return ("## What happened\n\n| when | who | event |\n|---|---|---|\n"
            + "\n".join(rows) + note)


def _since(stamp: str, start: str | None) -> str:
    if not start:
        return _clock(stamp)
    seconds = (records.parse_time(stamp) - records.parse_time(start)).total_seconds()
    return ("−" if seconds < 0 else "+") + _duration(abs(seconds))
