"""The candidate's panel in the notebook: challenge, resource meter, AI chat, submit.

    from ib_extension.candidate.panel import show_panel
    panel = show_panel()
    panel.ask("How do I reverse a list?")   # the reply text
    panel.state, panel.history             # read from the service

`show_panel()` also starts activity telemetry (ib_extension.candidate.telemetry). It runs in the
candidate's own kernel, so a determined candidate can switch it off; the service enforces
budget, time and session state by itself and never relies on the panel or its telemetry.
"""

from .widget import ChatPanel, PanelError, show_panel

__all__ = ["ChatPanel", "PanelError", "show_panel"]
