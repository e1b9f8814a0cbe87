"""Files the package ships beside its code (the notebooks), found with importlib.resources.

In a wheel they live under ib_extension/_shipped/ (pyproject.toml maps the top-level
folders there); in a source checkout (an editable install) at the repo's top level.
Nothing shipped holds an answer key: the challenge library stays with the service.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The candidate's interview notebook in their workspace (the service captures it by name).
CANDIDATE_NOTEBOOK = "interview.ipynb"


def shipped(relative: str) -> Path:
    """`shipped("notebooks/dashboards")`: the installed copy, else the checkout's."""
    installed = Path(str(files("ib_extension"))) / "_shipped" / relative
    if installed.exists():
        return installed
    checkout = REPO / relative
    if checkout.exists():
        return checkout
    raise FileNotFoundError(f"{relative} is missing from the installed package ({installed}) "
                            "and there is no source checkout: reinstall interview-buddy.")


def dashboards_dir() -> Path:
    """The Voilà dashboards' notebooks: the service's root folder."""
    return shipped("notebooks/dashboards")


def candidate_template() -> Path:
    """The interview notebook every candidate starts from."""
    return shipped("notebooks/candidate/interview.ipynb")
