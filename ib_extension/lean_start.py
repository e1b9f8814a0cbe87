"""Start-up time of the processes Interview Buddy runs for itself.

jsonschema (imported by jupyter_server through jupyter_events, by JupyterHub and by
nbformat) builds an RFC 3987 grammar at import when the optional rfc3987_syntax is
installed, as jupyter_events asks: 1.2-1.5 s here and 4-7 s on a loaded machine, for the
"iri" format check, which no schema these processes validate uses. Our own processes
(the service, a candidate's server, the hub, `ib export`, the dashboards' kernels) go
without it: jsonschema then skips "iri" checks, as when the package is not installed.
Never the candidate's kernel, whose imports are the candidate's business.

``python -m ib_extension.lean_start MODULE ARGS...`` runs ``python -m MODULE ARGS...``
that way (a candidate's JupyterLab, a JupyterHub single-user server, the hub).
"""

from __future__ import annotations

import runpy
import sys


def without_iri_grammar() -> None:
    """Before jsonschema is first imported: its "iri" check goes unbuilt."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def command(module: str) -> list[str]:
    """The argv that runs ``python -m module`` this way (add the module's own arguments)."""
    return [sys.executable, "-m", "ib_extension.lean_start", module]


if __name__ == "__main__":
    without_iri_grammar()
    sys.argv = sys.argv[1:]  # run_module puts MODULE's file in argv[0], as python -m does
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
