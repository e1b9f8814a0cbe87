"""The candidate's side as a Jupyter server extension: a JupyterLab bound to one session.

Enabled only on a candidate's server (`ib lab`, or a JupyterHub single-user server
spawned for the session). Its server holds only the session's candidate token; it
re-serves the candidate API (server.py), records snapshots on save, and writes the
interview notebook on first start.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode, default

from .. import __version__
from ..api.client import IBClient
from ..api.environment import FORBIDDEN_ENV, SERVICE_URL_ENV, SESSION_TOKEN_ENV
from .notebook import NOTEBOOK_NAME, ensure_notebook
from .server import Upstream, handlers, make_post_save_hook


class IBCandidate(ExtensionApp):
    name = "ib_extension.candidate"
    description = "Interview Buddy: a candidate's workspace bound to one session"
    version = __version__
    load_other_extensions = True

    service_url = Unicode(config=True, help="URL of the ib service (default: $IB_SERVICE_URL).")
    session_token = Unicode(config=True,
                            help="The session's candidate token (default: $IB_SESSION_TOKEN).")
    notebook_name = Unicode(NOTEBOOK_NAME, config=True,
                            help="The interview notebook, made from the template on first start.")

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get(SERVICE_URL_ENV, "")

    @default("session_token")
    def _default_session_token(self) -> str:
        return os.environ.get(SESSION_TOKEN_ENV, "")

    def initialize_settings(self) -> None:
        # Kernels inherit this server's environment: no secret may stay in it.
        for name in FORBIDDEN_ENV:
            os.environ.pop(name, None)
        self.upstream = Upstream(self.service_url, self.session_token)
        # Kernels find the service with these (the panel's Python side and telemetry).
        os.environ[SERVICE_URL_ENV] = self.upstream.url
        os.environ[SESSION_TOKEN_ENV] = self.session_token
        serverapp = self.serverapp
        serverapp.contents_manager.register_post_save_hook(
            make_post_save_hook(self.upstream, serverapp.root_dir))
        folder = Path(serverapp.root_dir)
        if not (folder / self.notebook_name).exists():
            client = IBClient(self.upstream.url, self.session_token, scheme="bearer")
            try:
                ensure_notebook(folder, client.me(), self.notebook_name)
            finally:
                client.close()

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers(self.upstream))

    async def stop_extension(self) -> None:
        await self.upstream.http.aclose()
