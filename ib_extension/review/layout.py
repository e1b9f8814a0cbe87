"""Where chart labels go so that they never overlap: one greedy packing for every chart
(the dashboard's plotly charts and the exports' static SVG)."""

from __future__ import annotations

CHAR_PX = 6.6  # width of one character of a 11-12 px system font, generously
LABEL_PAD_PX = 10  # room kept between two labels on one row


def label_px(text: str) -> float:
    return len(text) * CHAR_PX + LABEL_PAD_PX


def stack(spans: list[tuple[float, float]]) -> list[int]:
    """The row of each (start, end) span: the lowest row whose spans so far all end
    before it starts. Spans are taken in order of their start; rows count from 0."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    ends: list[float] = []  # the right edge of the last span of each row
    rows = [0] * len(spans)
    for i in order:
        start, end = spans[i]
        row = next((r for r, edge in enumerate(ends) if edge <= start), len(ends))
        if row == len(ends):
            ends.append(end)
        else:
            ends[row] = end
        rows[i] = row
    return rows


def label_rows(xs: list[float], texts: list[str], px_per_unit: float) -> list[int]:
    """Rows for labels centred on `xs` (data units) on an axis drawn at `px_per_unit`."""
    spans = []
    for x, text in zip(xs, texts, strict=True):
        half = label_px(text) / 2 / px_per_unit
        spans.append((x - half, x + half))
    return stack(spans)
