"""The export formats and file names, without the exporters: `ib` builds its command line
from these, and must not pay for importing nbformat, nbconvert and plotly to do so."""

from __future__ import annotations

import re

FORMATS = ("ipynb", "md", "json", "html", "csv")
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(session_id: str, fmt: str) -> str:
    """`<session id>.<format>`, with anything that could leave the folder replaced."""
    return f"{SAFE_NAME.sub('_', session_id) or 'session'}.{fmt}"
