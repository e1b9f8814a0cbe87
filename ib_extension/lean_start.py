"""Start-up time of the processes Interview Buddy runs for itself.

jsonschema (imported by jupyter_server through jupyter_events, by JupyterHub and by
nbformat) imports, when they are installed (jupyter_events asks for them), the optional
libraries of its format checks. Three of them are slow to import, for checks that no
schema these processes validate uses: rfc3987_syntax builds an RFC 3987 grammar for
"iri" (1.2-1.5 s here, 4-7 s on a loaded machine), rfc3986_validator compiles its
patterns for "uri" (0.09 s) and isoduration brings arrow for "duration" (0.04 s). Our
own processes (the service, a candidate's server, the hub, `ib export`, the dashboards'
kernels) go without them: jsonschema then skips those checks, as when the libraries are
not installed. Never the candidate's kernel, whose imports are the candidate's business.

``python -m ib_extension.lean_start MODULE ARGS...`` runs ``python -m MODULE ARGS...``
that way (a candidate's JupyterLab, a JupyterHub single-user server, the hub).
"""

from __future__ import annotations

import runpy
import sys

UNUSED = ("rfc3987_syntax", "rfc3986_validator", "isoduration")


def without_unused_format_checks() -> None:
    """Before jsonschema is first imported: its slow, unused format checks go unloaded
    (a module that is None in sys.modules raises ImportError, as if not installed)."""
    if "jsonschema" not in sys.modules:
        for name in UNUSED:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def command(module: str) -> list[str]:
    """The argv that runs ``python -m module`` this way (add the module's own arguments)."""
    return [sys.executable, "-m", "ib_extension.lean_start", module]


if __name__ == "__main__":
    without_unused_format_checks()
    sys.argv = sys.argv[1:]  # run_module puts MODULE's file in argv[0], as python -m does
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
