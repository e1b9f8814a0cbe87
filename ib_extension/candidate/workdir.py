"""The candidate's working folder, as the candidate's server sets it up on start, whoever
launched it (`ib lab`, or a JupyterHub single-user server with the extension enabled):
the interview notebook (notebook.py) and the kernels' IPython profile, which loads the
activity telemetry into every kernel without a cell to run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .notebook import NOTEBOOK_NAME, ensure_notebook

KERNEL_CONFIG = "c.InteractiveShellApp.extensions = ['ib_extension.candidate.telemetry']\n"


def ipython_dir(folder: Path) -> Path:
    return folder / ".ib" / "ipython"


def prepare(folder: Path, session: dict[str, Any], name: str = NOTEBOOK_NAME) -> Path:
    """Write what is missing (the candidate's files are never overwritten); returns the
    notebook's path."""
    notebook = ensure_notebook(folder, session, name)
    profile = ipython_dir(folder) / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG, encoding="utf-8")
    return notebook


def point_kernels_at(folder: Path) -> None:
    """Kernels started by this server read the profile above (they inherit its environment)."""
    os.environ["IPYTHONDIR"] = str(ipython_dir(folder))
