"""What the workspace's JupyterLab front-end (labextension/, shipped prebuilt in the wheel)
reads from the candidate's server: the workspace's settings, and the panel's code and
styles — the same bundle the notebook widget uses (panel/widget.py), so there is one panel.

On a server without the candidate extension these routes do not exist, and the front-end
stays out of the way (a plain `jupyter lab` in the same environment stays plain)."""

from __future__ import annotations

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web

from .panel import view
from .panel.widget import bundle, stylesheet


class WorkspaceHandler(APIHandler):
    def initialize(self, settings: dict) -> None:
        self.workspace = settings

    @web.authenticated
    def get(self) -> None:
        self.finish({**self.workspace, "rules": view.rules()})


class AssetHandler(JupyterHandler):
    """The panel's code and styles: the same files the wheel ships, nothing secret. They
    are loaded by `import()` and a stylesheet link, which carry no XSRF token, and
    JupyterHub's single-user servers accept their login cookie only on navigations or with
    one, so these answer without a login."""

    def initialize(self, kind: str) -> None:
        self.kind = kind

    @allow_unauthenticated
    def get(self) -> None:
        if self.kind == "js":
            self.set_header("Content-Type", "text/javascript; charset=utf-8")
            self.finish(bundle())
        else:
            self.set_header("Content-Type", "text/css; charset=utf-8")
            self.finish(stylesheet())


def handlers(settings: dict) -> list[tuple]:
    return [
        (r"/ib/candidate/workspace", WorkspaceHandler, {"settings": settings}),
        (r"/ib/candidate/panel\.js", AssetHandler, {"kind": "js"}),
        (r"/ib/candidate/panel\.css", AssetHandler, {"kind": "css"}),
    ]
