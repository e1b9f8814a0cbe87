"""Where the bundled folders are: the source checkout first, else the installed copy."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_dir(name: str) -> Path:
    """`notebooks`, `challenges`... from a checkout, or <prefix>/share/interview_buddy/."""
    checkout = REPO / name
    if (REPO / "pyproject.toml").exists() and checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "interview_buddy" / name
