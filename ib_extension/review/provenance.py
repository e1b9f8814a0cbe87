"""Which code in the final notebook came from the AI, and how much the candidate changed it.

Decided by content only, never by telemetry (copy/paste events can be faked or lost):
every code cell is compared with the fenced code blocks of the assistant's replies,
line by line after normalising whitespace, with ``difflib``.

Each line of a code cell ends up as one of
- ``unchanged``: an AI line, as the AI wrote it;
- ``modified``: aligned with an AI line and still close to it (``LINE_CLOSE`` or more);
- ``candidate``: anything else, including the challenge's starter code and code the
  candidate had sent in a question (an AI that echoes it back did not write it).

Cells the product put into the notebook (the panel cell) are left out.

Blank lines do not count.
"""

from __future__ import annotations

import difflib
import re

from .records import challenge, check_record, final_notebook, messages, product_cell

LINE_CLOSE = 0.6  # character similarity from which a changed line still counts as the AI's
MIN_SHARED_LINES = 2  # lines a cell must share with a block (fewer if the block is shorter)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$")


def opens_fence(line: str) -> str | None:
    """The fence (backticks or tildes) that ``line`` opens, as CommonMark reads it."""
    match = FENCE.match(line)
    if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
        return match.group(1)
    return None


def closes_fence(line: str, fence: str) -> bool:
    match = FENCE.match(line)
    return bool(
        match
        and match.group(1)[0] == fence[0]
        and len(match.group(1)) >= len(fence)
        and not match.group(2).strip()
    )


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text; a block left open (a reply cut off
    mid-stream) runs to the end of the text."""
    blocks, current, fence = [], [], None
    for line in markdown.splitlines():
        if fence is None:
            fence, current = opens_fence(line), []
        elif closes_fence(line, fence):
            blocks.append("\n".join(current))
            fence = None
        else:
            current.append(line)
    if fence is not None:
        blocks.append("\n".join(current))
    return blocks


def normalise(source: str) -> list[str]:
    """Lines compared for provenance: whitespace runs collapsed, blank lines dropped."""
    return [" ".join(line.split()) for line in source.splitlines() if line.strip()]


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def provenance(record) -> dict:
    """Per code cell of the final notebook: the best matching AI block (message id),
    its similarity 0..1, and the line counts; overall, the share of the final code's
    lines that came from the AI. ``{"cells": [], ...}`` when there is no final notebook."""
    check_record(record)
    blocks = ai_blocks(record)
    nb = final_notebook(record)
    cells = []
    for index, cell in enumerate((nb or {}).get("cells") or []):
        # The cells Interview Buddy put there (the panel cell) are nobody's work.
        if cell.get("cell_type") == "code" and not product_cell(cell):
            cells.append(
                {
                    "index": index,
                    "cell_id": cell.get("id"),
                    **attribute(normalise(cell_source(cell)), blocks),
                }
            )
    total = sum(c["lines"] for c in cells)
    unchanged = sum(c["ai_unchanged"] for c in cells)
    modified = sum(c["ai_modified"] for c in cells)
    return {
        "has_notebook": nb is not None,
        "ai_blocks": len(blocks),
        "lines": total,
        "ai_unchanged": unchanged,
        "ai_modified": modified,
        "candidate": total - unchanged - modified,
        "ai_share": round((unchanged + modified) / total, 4) if total else None,
        "messages_used": [
            b
            for b in dict.fromkeys(b["message_id"] for b in blocks)
            if any(b in c["sources"] for c in cells)
        ],
        "cells": cells,
    }


def ai_blocks(record) -> list[dict]:
    """``{"message_id", "lines"}`` per fenced block of every assistant reply, without the
    lines the candidate had already written (starter code, code in earlier questions)."""
    known = set(normalise(challenge(record).get("starter_code") or ""))
    blocks = []
    for m in messages(record):
        if m["role"] == "user":
            known.update(normalise(m.get("content") or ""))
        else:
            for block in code_blocks(m.get("content") or ""):
                lines = [line for line in normalise(block) if line not in known]
                if lines:
                    blocks.append({"message_id": m["id"], "lines": lines})
    return blocks


def attribute(cell: list[str], blocks: list[dict]) -> dict:
    """Attribute a cell's normalised lines: align them with the most similar block,
    then what is left with the next, so a cell built from several replies is covered.

    A block the AI gave more than once (the same lines) is compared with the cell once,
    and aligned once with the same lines left open: both are pure functions of the lines."""
    ratios: dict[tuple[str, ...], float] = {}
    for b in blocks:
        key = tuple(b["lines"])
        if key not in ratios:
            ratios[key] = difflib.SequenceMatcher(None, cell, b["lines"], autojunk=False).ratio()
    ranked = sorted(
        ((ratios[tuple(b["lines"])], i) for i, b in enumerate(blocks)),
        key=lambda r: (-r[0], r[1]),
    )
    state = ["candidate"] * len(cell)
    sources = []
    aligned: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[int, str]] = {}
    for ratio, i in ranked:
        if ratio == 0:
            break
        open_lines = [k for k, s in enumerate(state) if s == "candidate"]
        key = (tuple(cell[k] for k in open_lines), tuple(blocks[i]["lines"]))
        if key not in aligned:
            aligned[key] = _align(list(key[0]), blocks[i]["lines"])
        found = aligned[key]
        if len(found) >= min(MIN_SHARED_LINES, len(blocks[i]["lines"])):
            for k, kind in found.items():
                state[open_lines[k]] = kind
            sources.append(blocks[i]["message_id"])
    best = ranked[0] if ranked and ranked[0][0] > 0 else None
    return {
        "lines": len(cell),
        "ai_unchanged": state.count("unchanged"),
        "ai_modified": state.count("modified"),
        "candidate": state.count("candidate"),
        "best_message_id": blocks[best[1]]["message_id"] if best else None,
        "similarity": round(best[0], 4) if best else 0.0,
        "sources": list(dict.fromkeys(sources)),
    }


def _align(lines: list[str], block: list[str]) -> dict[int, str]:
    """Index in ``lines`` -> "unchanged" | "modified" for the lines that align with ``block``."""
    found = {}
    matcher = difflib.SequenceMatcher(None, lines, block, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            found.update({i: "unchanged" for i in range(i1, i2)})
        elif tag == "replace":
            # A replaced line still close to one of the AI lines it replaced was edited.
            free = list(range(j1, j2))
            for i in range(i1, i2):
                scores = [
                    (difflib.SequenceMatcher(None, lines[i], block[j]).ratio(), j) for j in free
                ]
                score, j = max(scores, default=(0.0, None))
                if score >= LINE_CLOSE:
                    found[i] = "modified"
                    free.remove(j)
    return found
