"""The candidate's interview notebook, made from the template with the session's challenge.

Written once, on the first start of a candidate's server; an existing notebook is the
candidate's work and is never overwritten.
"""

from __future__ import annotations

import copy
import json
import platform
from pathlib import Path
from typing import Any

from ..api.resources import CANDIDATE_NOTEBOOK, candidate_template

NOTEBOOK_NAME = CANDIDATE_NOTEBOOK


def fill_template(template: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """The candidate notebook: the template with the challenge's title and starter code in
    the cells whose metadata says `{"ib": {"role": "title" | "starter"}}`."""
    nb = copy.deepcopy(template)
    challenge = session.get("challenge") or {}
    for cell in nb["cells"]:
        role = cell.get("metadata", {}).get("ib", {}).get("role")
        if role == "title":
            cell["source"] = f"# {challenge.get('title') or 'Interview'}\n\n" + _text(cell["source"])
        elif role == "starter" and challenge.get("starter_code"):
            cell["source"] = challenge["starter_code"]
    nb.setdefault("metadata", {})["ib"] = {"session_id": session["id"]}
    # What the kernel reports when it starts: written up front, so that opening the notebook
    # does not mark it modified.
    nb["metadata"]["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
        "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3", "version": platform.python_version()}
    return nb


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def ensure_notebook(folder: Path, session: dict[str, Any], name: str = NOTEBOOK_NAME) -> Path:
    """Create `folder/name` from the template unless it exists; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    notebook = folder / name
    if not notebook.exists():
        template = json.loads(candidate_template().read_text(encoding="utf-8"))
        notebook.write_text(json.dumps(fill_template(template, session), indent=1) + "\n",
                            encoding="utf-8")
    return notebook
