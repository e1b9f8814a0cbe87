"""The interviewer's controls for one session: lifecycle buttons, extensions, a
confirmation step for the destructive actions, and a sentence saying what happened."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from ..api.client import IBClientError
from . import fmt
from .live import spawn
from .widgets import CopyBox


class Action:
    def __init__(self, name: str, label: str, done: str, confirm: str | None = None,
                 style: str = ""):
        self.name, self.label, self.done, self.confirm, self.style = name, label, done, confirm, style


ACTIONS = [
    Action("start", "Start", "Started: the clock is running.", style="success"),
    Action("pause", "Pause", "Paused: the clock is stopped, the candidate's running code was "
           "interrupted and their notebook is covered, and their AI requests are refused until "
           "you resume.",
           confirm="Pause this interview? The clock stops, code running in the candidate's "
                   "notebook is interrupted, their notebook is covered and their AI requests "
                   "are refused until you resume.", style="warning"),
    Action("resume", "Resume", "Resumed: the clock is running again.", style="success"),
    Action("lock", "Lock", "Locked: the candidate's AI requests are refused until you unlock.",
           confirm="Lock this session? The candidate's AI requests are refused until you "
                   "unlock it.", style="warning"),
    Action("unlock", "Unlock", "Unlocked: the candidate can use the AI again."),
    Action("end", "End", "Ended: the candidate's notebook is handed in and read-only, and they "
           "can no longer use the AI.",
           confirm="End this interview now? The candidate's notebook is handed in as it is and "
                   "becomes read-only; the interview cannot be resumed afterwards.",
           style="danger"),
]


def allowed(action: str, session: dict) -> bool:
    """Whether the service admits `action` now: it publishes them with every session."""
    return action in session.get("allowed_actions", ())


MAX_EXTRA_MINUTES = 600
MAX_EXTRA_TOKENS = 1_000_000


class Controls:
    def __init__(self, client, on_session: Callable[[dict], None]):
        self.client = client
        self.on_session = on_session
        self.session: dict | None = None
        self.pending: Action | None = None
        self.buttons = {}
        for a in ACTIONS:
            b = w.Button(description=a.label, button_style=a.style,
                         layout=w.Layout(width="86px"))
            b.add_class(f"ib-action-{a.name}")
            b.on_click(lambda _, a=a: self.ask(a))
            self.buttons[a.name] = b
        self.minutes = w.BoundedIntText(value=10, min=1, max=MAX_EXTRA_MINUTES,
                                        description="Minutes", layout=w.Layout(width="140px"),
                                        style={"description_width": "60px"})
        self.minutes.add_class("ib-input-minutes")
        self.add_time = w.Button(description="Add minutes", layout=w.Layout(width="auto"))
        self.add_time.add_class("ib-action-extend-time")
        self.add_time.on_click(lambda _: spawn(self.extend_time()))
        self.tokens = w.BoundedIntText(value=5000, min=1, max=MAX_EXTRA_TOKENS, step=1000,
                                       description="Tokens", layout=w.Layout(width="160px"),
                                       style={"description_width": "54px"})
        self.tokens.add_class("ib-input-tokens")
        self.add_tokens = w.Button(description="Add tokens", layout=w.Layout(width="auto"))
        self.add_tokens.add_class("ib-action-extend-tokens")
        self.add_tokens.on_click(lambda _: spawn(self.extend_tokens()))

        self.question = w.HTML()
        self.confirm = w.Button(description="Confirm", button_style="danger")
        self.confirm.add_class("ib-confirm")
        self.confirm.on_click(lambda _: spawn(self.run(self.pending)) if self.pending else None)
        self.cancel = w.Button(description="Cancel")
        self.cancel.add_class("ib-cancel")
        self.cancel.on_click(lambda _: self._close_confirm())
        self.confirm_box = w.HBox([self.question, self.confirm, self.cancel],
                                  layout=w.Layout(display="none"))
        self.confirm_box.add_class("ib-confirm-box")
        self.result = w.HTML()
        self.result.add_class("ib-result")
        # On JupyterHub: a new one-time link when the candidate lost theirs or changes browser.
        self.new_link = w.Button(description="New candidate link", layout=w.Layout(
            width="auto", display="none"))
        self.new_link.add_class("ib-action-new-link")
        self.new_link.on_click(lambda _: spawn(self.issue_link()))
        self.link_box = w.VBox()
        self.link_box.add_class("ib-new-link")
        lifecycle = w.HBox(list(self.buttons.values()))
        extend = w.HBox([self.minutes, self.add_time, self.tokens, self.add_tokens,
                         self.new_link])
        extend.add_class("ib-extend")
        bar = w.HBox([lifecycle, extend])
        bar.add_class("ib-controls-bar")
        self.widget = w.VBox([bar, self.confirm_box, self.result, self.link_box])
        self.widget.add_class("ib-controls")

    @property
    def links(self) -> bool:
        return self.new_link.layout.display != "none"

    @links.setter
    def links(self, on: bool) -> None:
        self.new_link.layout.display = "" if on else "none"

    # -- state -----------------------------------------------------------------------
    def set_session(self, session: dict, *, keep_result: bool = True) -> None:
        if self.session is None or session["id"] != self.session["id"]:
            keep_result = False
            self._close_confirm()
        self.session = session
        if not keep_result:
            self.result.value = ""
            self.link_box.children = []
        self._refresh()

    def _refresh(self, busy: bool = False) -> None:
        s = self.session or {}
        for name, b in self.buttons.items():
            b.disabled = busy or not s or not allowed(name, s)
        self.add_time.disabled = busy or not s or not allowed("extend-time", s)
        self.add_tokens.disabled = busy or not s or not allowed("extend-tokens", s)
        self.new_link.disabled = busy or not s or s.get("status") in fmt.ENDED

    def _say(self, kind: str, text: str) -> None:
        self.result.value = fmt.notice(kind, text)

    # -- actions -----------------------------------------------------------------------
    def ask(self, action: Action) -> None:
        if action.confirm is None:
            spawn(self.run(action))
            return
        self.pending = action
        who = (self.session or {}).get("candidate_name") or "this candidate"
        self.question.value = (f'<span class="ib-question"><b>{fmt.esc(action.label)} — '
                               f'{fmt.esc(who)}.</b> {fmt.esc(action.confirm)}</span>')
        self.confirm.description = f"Yes, {action.label.lower()}"
        self.confirm_box.layout.display = "flex"

    def _close_confirm(self) -> None:
        self.pending = None
        self.confirm_box.layout.display = "none"

    async def run(self, action: Action) -> None:
        self._close_confirm()
        await self._call(self.client.action(self.session["id"], action.name), action.done)

    async def extend_time(self) -> None:
        minutes = self.minutes.value
        session = await self._call(self.client.extend_time(self.session["id"], minutes * 60),
                                   f"Added {minutes} minute{'s' * (minutes != 1)}.")
        if session:
            self._say("ok", f"Added {minutes} minute{'s' * (minutes != 1)}: "
                            f"{fmt.clock(fmt.time_left(session))} left.")

    async def extend_tokens(self) -> None:
        tokens = self.tokens.value
        session = await self._call(self.client.extend_tokens(self.session["id"], tokens),
                                   f"Added {tokens:,} tokens.")
        if session:
            self._say("ok", f"Added {tokens:,} tokens: {session['tokens_left']:,} left of "
                            f"{session['token_budget']:,}.")

    async def issue_link(self) -> None:
        try:
            issued = await self.client.new_link(self.session["id"])
        except IBClientError as e:
            self._say("error", e.message)
            return
        except Exception as e:
            self._say("error", f"The service did not answer ({type(e).__name__}); try again.")
            return
        self._say("ok", "A new link: the earlier one no longer works, and the browser that "
                        "had it is signed out once this one is opened.")
        self.link_box.children = [CopyBox(label="The candidate's new link",
                                          text=issued["candidate_url"])]

    async def _call(self, request, done: str) -> dict | None:
        self._refresh(busy=True)
        try:
            session = await request
        except IBClientError as e:
            self._say("error", e.message)
            return None
        except Exception as e:  # the service is unreachable, or answered nonsense
            self._say("error", f"The service did not answer ({type(e).__name__}); try again.")
            return None
        finally:
            self._refresh()
        self._say("ok", done)
        self.on_session(session)
        return session
