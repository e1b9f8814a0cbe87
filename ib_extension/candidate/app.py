"""The candidate's side as a Jupyter server extension: a JupyterLab bound to one session.

Enabled only on a candidate's server (`ib lab`, or a JupyterHub single-user server
spawned for the session). Its server holds only the session's candidate token; it
re-serves the candidate API (server.py), records snapshots on save, and writes the
interview notebook on first start.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Int, Unicode, default

from .. import __version__
from ..api.client import IBClient
from ..api.environment import FORBIDDEN_ENV, SERVICE_URL_ENV, SESSION_TOKEN_ENV
from . import workdir, workspace
from .follower import Follower, Guard
from .notebook import NOTEBOOK_NAME
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
    autosave_seconds = Int(10, config=True,
                           help="How often the workspace saves open notebooks by itself, in "
                                "seconds (JupyterLab's own default is 120): at most this much "
                                "work is at risk when the interview ends.")
    final_save_seconds = Float(10.0, config=True,
                               help="At the end: how long this server waits for the browser's "
                                    "last save before it stops the kernels, refuses saves and "
                                    "hands the notebook in.")

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
        self.guard = Guard()
        self.follower = Follower(self.upstream, serverapp, self.notebook_name,
                                 self.final_save_seconds, self.guard)
        cm = serverapp.contents_manager
        cm.register_pre_save_hook(self.guard.pre_save)
        cm.register_post_save_hook(
            make_post_save_hook(self.upstream, serverapp.root_dir, self.follower.saved))
        self.guard.wrap_kernel_starts(serverapp.kernel_manager)
        folder = Path(serverapp.root_dir)
        client = IBClient(self.upstream.url, self.session_token, scheme="bearer")
        try:
            session = client.me()  # reading it does not start the clock
        finally:
            client.close()
        workdir.prepare(folder, session, self.notebook_name)
        workdir.point_kernels_at(folder)

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers(self.upstream))
        self.handlers.extend(workspace.handlers({
            "notebook": self.notebook_name, "autosave_seconds": self.autosave_seconds}))

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        self._following = asyncio.ensure_future(self.follower.run())

    async def stop_extension(self) -> None:
        following = getattr(self, "_following", None)
        if following is not None:
            following.cancel()
        await self.upstream.http.aclose()
