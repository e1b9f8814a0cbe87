"""How the ib service's Voilà is configured for the dashboards: the interview_buddy
template, installed with the package as shared data (`ib serve` adds `argv()` to the
server's command line; `config_text()` is the same as a Jupyter config file).
"""

from __future__ import annotations

TEMPLATE = "interview_buddy"


def argv() -> list[str]:
    return [f"--VoilaConfiguration.template={TEMPLATE}"]


def config_text() -> str:
    return f"c.VoilaConfiguration.template = {TEMPLATE!r}\n"
