"""`python -m ib_extension.lean_start MODULE ARGS...` runs MODULE as `python -m` does, with
jsonschema's slow, unused format checks left unloaded (the Jupyter servers Interview Buddy
starts)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

PROBE = """import json, sys
import jsonschema  # what jupyter_server, JupyterHub and nbformat import
from ib_extension.lean_start import UNUSED
print(json.dumps({"argv": sys.argv[1:], "name": __name__,
                  "loaded": [m for m in UNUSED if sys.modules.get(m) is not None],
                  "checks": jsonschema.validate({"n": 1}, {"type": "object"}) is None}))
"""


def run(tmp_path, *prefix: str) -> dict:
    (tmp_path / "probe_module.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, *prefix, "probe_module", "--flag", "a b"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_runs_the_module_as_python_m_does_without_the_checks(tmp_path):
    assert run(tmp_path, "-m", "ib_extension.lean_start") == {
        "argv": ["--flag", "a b"], "name": "__main__", "loaded": [], "checks": True}


def test_plain_python_m_loads_them_when_installed(tmp_path):
    # What the launcher saves: jupyter_events installs them with jsonschema.
    from ib_extension.lean_start import UNUSED

    installed = [m for m in UNUSED if importlib.util.find_spec(m) is not None]
    assert installed, "none of them is installed here: the launcher saves nothing"
    assert run(tmp_path, "-m") == {"argv": ["--flag", "a b"], "name": "__main__",
                                   "loaded": installed, "checks": True}
