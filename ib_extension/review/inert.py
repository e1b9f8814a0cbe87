"""Markdown someone else wrote, rewritten so that no renderer can find HTML in it.

`inert_markdown()` parses the text with markdown-it-py (a CommonMark parser) and writes
it back out from the parse: the structure (paragraphs, headings, lists, quotes, code,
emphasis) is kept as Markdown of our own making, and everything else is text, escaped
so that it stays text in any renderer — raw HTML blocks and tags, autolinks, links and
images (their label and address become plain text: no `javascript:`, `data:` or
tracking image, however spelt), entities (decoded by the parser, then escaped again).
Code keeps its characters inside a fence or span longer than any backtick run in it.

Working from a real parse is what the old line-by-line neutraliser lacked: a code span
that closes on the next line, an HTML block, a reference link are what the parser says
they are, not what a regular expression guessed.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark")
# Characters that can start inline markup anywhere: backslash-escaped (CommonMark lets
# any ASCII punctuation be), except the three HTML ones, which become entities so that
# even a renderer that ignores backslashes never sees a tag or an entity.
_INLINE = re.compile(r"[\\`*\[\]!~|{}]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # snake_case stays
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# What can start a block at the beginning of a line: escaped there.
_LINE_START = re.compile(r"^(\s*)([#>+=\-*]|\d+[.)]|(?=[`~]{3}))")
_INFO = re.compile(r"[^A-Za-z0-9_+-]")


def inert_markdown(text: str) -> str:
    return "\n\n".join(_blocks(_PARSER.parse(str(text)))).strip("\n")


def escape_text(text: str) -> str:
    """Plain text as Markdown that renders as exactly that text, and nothing else (no
    bare URL either: renderers that link `https://...` in text find `:\\/\\/`)."""
    out = _INLINE.sub(lambda m: "\\" + m.group(0), text).replace("://", ":\\/\\/")
    return out.translate(_HTML)  # one pass in C, not a Python step per character


def _escape_line_starts(text: str) -> str:
    return "\n".join(_LINE_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), line)
                     for line in text.split("\n"))


def _escape_marker(marker: str) -> str:
    if not marker:  # a fence to be: its first character
        return "\\"
    return marker[:-1] + "\\" + marker[-1]


def _fence(code: str, info: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{_INFO.sub('', info)[:30]}\n{code.rstrip(chr(10))}\n{ticks}"


def _code_span(code: str) -> str:
    code = code.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if code.startswith(("`", " ")) or code.endswith(("`", " ")) or not code else ""
    return f"{ticks}{pad}{code}{pad}{ticks}"


def _inline(children: list[Token] | None) -> str:
    parts: list[str] = []
    hidden_urls: list[str] = []  # addresses of links being written out as text
    for tok in children or []:
        kind = tok.type
        line_start = not parts or parts[-1] == "\n"
        if kind == "text":
            text = escape_text(tok.content)
            parts.append(_escape_line_starts(text) if line_start else text)
        elif kind == "code_inline":
            parts.append(_code_span(tok.content))
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind in ("em_open", "em_close"):
            parts.append("*")
        elif kind in ("strong_open", "strong_close"):
            parts.append("**")
        elif kind == "html_inline":
            text = escape_text(tok.content)
            parts.append(_escape_line_starts(text) if line_start else text)
        elif kind == "link_open":
            hidden_urls.append(str(tok.attrs.get("href", "")))
        elif kind == "link_close":
            url = hidden_urls.pop() if hidden_urls else ""
            parts.append(f" ({escape_text(url)})" if url else "")
        elif kind == "image":
            label = escape_text(tok.content or "image")
            parts.append(f"{label} (image: {escape_text(str(tok.attrs.get('src', '')))})")
        else:  # anything newer the parser may produce: its text, escaped
            parts.append(_escape_line_starts(escape_text(tok.content)))
    return "".join(parts)


def _blocks(tokens: list[Token]) -> list[str]:
    """The blocks at this level, each as Markdown text; nested containers recurse."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind in ("paragraph_open", "heading_open"):
            text = _inline(tokens[i + 1].children)
            if kind == "heading_open":
                text = "#" * int(tok.tag[1]) + " " + text.replace("\n", " ")
            out.append(text)
            i += 3
        elif kind in ("fence", "code_block"):
            out.append(_fence(tok.content, tok.info if kind == "fence" else ""))
            i += 1
        elif kind == "html_block":
            out.append(_escape_line_starts(escape_text(tok.content.rstrip("\n"))))
            i += 1
        elif kind == "hr":
            out.append("---")
            i += 1
        elif kind.endswith("_open"):  # a container: blockquote, lists, list items
            end = _closing(tokens, i)
            inner = tokens[i + 1:end]
            if kind == "blockquote_open":
                body = "\n\n".join(_blocks(inner))
                out.append("\n".join(f"> {line}" if line else ">" for line in body.split("\n")))
            elif kind in ("bullet_list_open", "ordered_list_open"):
                out.append(_list(inner, ordered=kind == "ordered_list_open",
                                 start=int(tok.attrs.get("start", 1) or 1)))
            else:
                out.extend(_blocks(inner))
            i = end + 1
        else:
            i += 1
    return out


def _closing(tokens: list[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _list(tokens: list[Token], *, ordered: bool, start: int) -> str:
    items, i, number = [], 0, start
    while i < len(tokens):
        if tokens[i].type == "list_item_open":
            end = _closing(tokens, i)
            marker = f"{number}." if ordered else "-"
            body = "\n\n".join(_blocks(tokens[i + 1:end])) or ""
            pad = " " * (len(marker) + 1)
            lines = body.split("\n")
            items.append("\n".join([f"{marker} {lines[0]}"]
                                   + [f"{pad}{line}" if line else "" for line in lines[1:]]))
            number += 1
            i = end + 1
        else:
            i += 1
    return "\n".join(items)
