"""How every page and export words a few things, without the wire models (models.py
re-exports these): the event catalogue's sentences use them, and an export reads those
without importing pydantic."""

from __future__ import annotations


def score_text(score: float | None) -> str:
    """A score (a fraction from 0 to 1) as every page and export shows it: '75 %'."""
    return "–" if score is None else f"{score * 100:.0f} %"
