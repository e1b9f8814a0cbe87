"""What to hand the candidate, shown again on demand. The service keeps only a hash of a
candidate token, so showing it again means issuing a new one (POST .../token): the old
one stops working at once. Whatever the service returns is shown as it comes (a token
today; a link too where the hub makes one), each with a copy button."""

from __future__ import annotations

import ipywidgets as w

from ..api.client import IBClientError
from . import fmt
from .live import spawn
from .widgets import CopyBox

LABELS = {"candidate_url": "The candidate's link"}


def handout(service_url: str, token: str) -> tuple[str, str]:
    """(command that opens the candidate's workspace, settings for any OpenAI client)."""
    command = f"ib lab --service-url {service_url} --session-token {token}"
    openai = f"base_url = {service_url}/ib/v1\napi_key  = {token}"
    return command, openai


def boxes(service_url: str, issued: dict) -> list[CopyBox]:
    """A copy box per thing to hand over in `issued` (a created session or a new token).
    On JupyterHub the link is the whole hand-over: the token lives in the candidate's
    server, which the hub starts with it."""
    if issued.get("candidate_url"):
        return [CopyBox(label=LABELS["candidate_url"] + " (one browser; a new one can be "
                        "issued from the monitor or with `ib session link`)",
                        text=issued["candidate_url"])]
    found = []
    for key, value in issued.items():
        if key in ("id", "session") or not isinstance(value, str):
            continue
        if key == "candidate_token":
            command, openai = handout(service_url, value)
            found += [CopyBox(label="Open the candidate's workspace (on their machine)",
                              text=command),
                      CopyBox(label="Or point any OpenAI-compatible client at the service",
                              text=openai)]
        else:
            found.append(CopyBox(label=LABELS.get(key, key.replace("_", " ").capitalize()),
                                 text=value))
    return found


class Handover:
    """A button that issues the candidate's access again, after a confirmation."""

    QUESTION = ("Issue a new candidate token? The one the candidate has stops working at once "
                "(their open workspace too, until it gets the new one).")

    def __init__(self, client):
        self.client = client
        self.session: dict | None = None
        self.button = w.Button(description="Show the candidate's access again…",
                               tooltip="Issue a new token (or link) for this candidate")
        self.button.add_class("ib-handover")
        self.button.on_click(lambda _: self.ask())
        self.question = w.HTML()
        self.confirm = w.Button(description="Yes, issue a new one", button_style="danger")
        self.confirm.add_class("ib-handover-confirm")
        self.confirm.on_click(lambda _: spawn(self.issue()))
        self.cancel = w.Button(description="Cancel")
        self.cancel.on_click(lambda _: self._close())
        self.confirm_box = w.HBox([self.question, self.confirm, self.cancel],
                                  layout=w.Layout(display="none"))
        self.confirm_box.add_class("ib-confirm-box")
        self.result = w.VBox()
        self.result.add_class("ib-handover-result")
        self.widget = w.VBox([self.button, self.confirm_box, self.result])
        self.widget.add_class("ib-handover-box")

    def set_session(self, session: dict) -> None:
        if self.session is None or self.session["id"] != session["id"]:
            self.result.children = ()
            self._close()
        self.session = session
        # An ended session's token can still be replaced, but nobody needs it any more.
        self.button.disabled = session.get("status") in fmt.ENDED

    def ask(self) -> None:
        self.question.value = f'<span class="ib-question">{fmt.esc(self.QUESTION)}</span>'
        self.confirm_box.layout.display = "flex"

    def _close(self) -> None:
        self.confirm_box.layout.display = "none"

    async def issue(self) -> dict | None:
        self._close()
        sid = self.session["id"]
        try:
            issued = await self.client.rotate_token(sid)
        except IBClientError as e:
            self.result.children = [w.HTML(fmt.notice("error", e.message))]
            return None
        if self.session is None or self.session["id"] != sid:
            return None
        self.show(issued)
        return issued

    def show(self, issued: dict, note: str = "A new token was issued; the previous one no "
                                              "longer works.") -> None:
        self.result.children = [w.HTML(fmt.notice("ok", note)),
                                *boxes(self.client.url, issued)]
