"""`python -m ib_extension.lean_start MODULE ARGS...` runs MODULE as `python -m` does, with
jsonschema's RFC 3987 grammar left unbuilt (the Jupyter servers Interview Buddy starts)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

PROBE = """import json, sys
import jsonschema  # what jupyter_server, JupyterHub and nbformat import
print(json.dumps({"argv": sys.argv[1:], "name": __name__,
                  "grammar": sys.modules.get("rfc3987_syntax") is not None}))
"""


def run(tmp_path, *prefix: str) -> dict:
    (tmp_path / "probe_module.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, *prefix, "probe_module", "--flag", "a b"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_runs_the_module_as_python_m_does_without_the_grammar(tmp_path):
    assert run(tmp_path, "-m", "ib_extension.lean_start") == {
        "argv": ["--flag", "a b"], "name": "__main__", "grammar": False}


def test_plain_python_m_builds_it_when_installed(tmp_path):
    # What the launcher saves: jupyter_events installs rfc3987_syntax with jsonschema.
    installed = importlib.util.find_spec("rfc3987_syntax") is not None
    assert run(tmp_path, "-m") == {"argv": ["--flag", "a b"], "name": "__main__",
                                   "grammar": installed}
