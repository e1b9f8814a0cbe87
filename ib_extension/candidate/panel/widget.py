"""The chat panel widget: an anywidget whose front-end talks to the service by itself.

Why the front-end does the talking: ipywidgets handles comm messages on the kernel's shell
channel, so Python-side handlers wait while a cell runs. The panel's JavaScript instead
fetches through the candidate's own Jupyter server, which forwards to the ib service with
the session token (ib_extension/candidate.py). The browser never sees the token, the
countdown keeps ticking and the chat keeps working while the candidate's code runs.

The Python side is for code: `panel.ask("...")` returns the reply text, `panel.state` and
`panel.history` read the session and the conversation from the service, `panel.submit()`
sends the notebook. They use the kernel's IB_SERVICE_URL/IB_SESSION_TOKEN (set by `ib lab`).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import anywidget
import httpx
import traitlets

from ...api.client import IBClient, IBClientError
from . import view

HERE = Path(__file__).parent
# Vendored browser libraries (licences in vendor/LICENSES.txt), each a UMD build that the
# bundle below evaluates in a private CommonJS-style scope. Markdown from the AI or the
# candidate is untrusted: marked turns it into HTML and DOMPurify (the widely used,
# audited sanitizer) removes scripts, event handlers and javascript: URLs before it
# reaches the page. JupyterLab's own sanitizer is not reachable from a widget's module.
VENDOR = (("DOMPurify", "purify.min.js"), ("{ marked }", "marked.umd.js"),
          ("hljs", "highlight.min.js"))


class PanelError(RuntimeError):
    """The service refused or could not be reached; `code` is the service's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _vendor_module(binding: str, filename: str) -> str:
    src = (HERE / "vendor" / filename).read_text(encoding="utf-8")
    src = "\n".join(line for line in src.splitlines() if not line.startswith("//# sourceMappingURL"))
    return (f"const {binding} = (() => {{ const module = {{ exports: {{}} }}; "
            f"const exports = module.exports;\n(function () {{\n{src}\n}}).call(globalThis);\n"
            f"return module.exports; }})();\n")


@cache
def bundle() -> str:
    """panel.js with its vendored libraries in front: one ES module, no build step."""
    prelude = "".join(_vendor_module(b, f) for b, f in VENDOR)
    return prelude + (HERE / "panel.js").read_text(encoding="utf-8")


@cache
def stylesheet() -> str:
    # Code is coloured with JupyterLab's own editor variables (panel.css), so it follows the
    # theme; highlight.js's stylesheets are fixed light or dark.
    return (HERE / "panel.css").read_text(encoding="utf-8")


class ChatPanel(anywidget.AnyWidget):
    """The candidate's panel: challenge, resource meter, AI chat, submit."""

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)
    rules = traitlets.Dict(help="Thresholds, sentences and estimate constants (view.rules()).").tag(sync=True)
    notebook_path = traitlets.Unicode(
        help="The notebook this kernel runs, relative to the workspace; what Submit sends.").tag(sync=True)

    def __init__(self, *, service_url: str | None = None, session_token: str | None = None,
                 **kwargs: Any):
        url = service_url or os.environ.get("IB_SERVICE_URL", "")
        token = session_token or os.environ.get("IB_SESSION_TOKEN", "")
        if not url or not token:
            raise PanelError("not_configured",
                             "This kernel does not know its interview session: open the notebook "
                             "from the candidate workspace (`ib lab`), or set IB_SERVICE_URL and "
                             "IB_SESSION_TOKEN.")
        kwargs.setdefault("notebook_path", os.environ.get("JPY_SESSION_NAME", ""))
        super().__init__(_esm=bundle(), _css=stylesheet(), rules=view.rules(), **kwargs)
        self._url = url.rstrip("/")
        self._token = token  # kept on the Python side only: never a synced trait
        self._client = IBClient(self._url, token, scheme="bearer")

    # ---- reading ---------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """The session as the service sees it now (status, time and tokens left, challenge)."""
        return self._call(self._client.me)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The whole conversation, oldest first, as stored by the service."""
        return self._call(self._client.my_messages)["messages"]

    def summary(self) -> str:
        return view.summary(self.state, self.history)

    # ---- acting ----------------------------------------------------------------------
    def ask(self, question: str) -> str:
        """Ask the AI (with the conversation so far) and return its reply.
        Raises PanelError with the service's sentence when it refuses."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError("ask() needs the question as a non-empty string.")
        import openai

        messages = view.conversation(self.history) + [{"role": "user", "content": question}]
        client = openai.OpenAI(base_url=self._url + "/ib/v1", api_key=self._token, max_retries=0)
        try:
            reply = client.chat.completions.create(model=self.state["model"], messages=messages)
        except openai.APIStatusError as e:
            err = (e.body or {}) if isinstance(e.body, dict) else {}
            err = err.get("error", err)
            raise PanelError(err.get("code") or "error", err.get("message") or str(e)) from None
        except openai.APIConnectionError as e:
            raise PanelError("service_unreachable",
                             f"The interview service cannot be reached ({e}).") from None
        finally:
            client.close()
        return reply.choices[0].message.content or ""

    def submit(self, path: str | None = None) -> dict[str, Any]:
        """Send the saved notebook at `path` (default: this one) as the final submission."""
        target = Path(path or self.notebook_path)
        if not target.suffix == ".ipynb" or not target.is_file():
            raise ValueError(f"There is no saved notebook at '{target}' to submit; pass its path.")
        notebook = json.loads(target.read_text(encoding="utf-8"))
        return self._call(self._client.submit, notebook)

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except IBClientError as e:
            raise PanelError(e.code, e.message) from None
        except httpx.HTTPError as e:
            raise PanelError("service_unreachable",
                             f"The interview service cannot be reached ({e}).") from None

    def __repr__(self) -> str:
        try:
            return f"<ChatPanel: {self.summary()}>"
        except PanelError as e:
            return f"<ChatPanel: {e.message}>"


def show_panel(**kwargs: Any) -> ChatPanel:
    """Display the panel (the candidate notebook's first cell) and start activity telemetry."""
    from IPython.display import display

    from .. import telemetry

    panel = ChatPanel(**kwargs)
    telemetry.enable(service_url=panel._url, session_token=panel._token)
    display(panel)
    return panel
