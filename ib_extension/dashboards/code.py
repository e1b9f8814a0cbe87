"""Code as the dashboards show it: highlighted by Pygments (which escapes what it is
given: candidate code never becomes markup), in a monospace font, with the lines that
changed marked; and unified diffs of a notebook's code cells."""

from __future__ import annotations

import difflib
from functools import lru_cache

from pygments import highlight as _pygments
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from ..review.replay import CellDiff
from . import fmt

CSS_CLASS = "ib-code"
# Pygments' default colours meet WCAG AA on white; changed lines get a light green.
STYLE = "default"


@lru_cache(maxsize=1)
def stylesheet() -> str:
    rules = HtmlFormatter(style=STYLE).get_style_defs(f".{CSS_CLASS}")
    return rules + (f"\n.{CSS_CLASS} {{ background: #ffffff; }}"
                    f"\n.{CSS_CLASS} .hll {{ background-color: #f2fdf4; display: block; box-shadow: inset 3px 0 0 #2d7a3a; }}")


def highlight(source: str, changed: list[int] | None = None) -> str:
    """`source` as highlighted HTML; `changed` are 1-based line numbers to mark."""
    formatter = HtmlFormatter(style=STYLE, cssclass=CSS_CLASS, hl_lines=changed or [],
                              wrapcode=True)
    return _pygments(source or " ", PythonLexer(), formatter)


def changed_lines(before: str | None, after: str) -> list[int]:
    """1-based lines of `after` that are new or changed since `before` (all of them when
    there was no `before`)."""
    new = after.splitlines()
    if before is None:
        return list(range(1, len(new) + 1))
    matcher = difflib.SequenceMatcher(None, before.splitlines(), new, autojunk=False)
    return [j + 1 for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("insert", "replace")
            for j in range(j1, j2)]


def diff_html(diffs: list[CellDiff]) -> str:
    """Unified diffs of code cells, one block each: + lines green, - lines red."""
    blocks = []
    for d in diffs:
        lines = "".join(
            f'<div class="ibh-d{_diff_class(line)}">{fmt.esc(line) or "&nbsp;"}</div>'
            for line in d.lines) or '<div class="ib-muted">(empty cell)</div>'
        blocks.append(f'<div class="ibh-diff ibh-diff-{d.change}">'
                      f'<div class="ibh-diff-head">cell {fmt.esc(d.cell)} · {d.change} · '
                      f'+{d.added} −{d.removed}</div><div class="ibh-diff-body">{lines}</div>'
                      f'</div>')
    return "".join(blocks)


def _diff_class(line: str) -> str:
    return {"+": "-add", "-": "-del", "@": "-hunk"}.get(line[:1], "")
