"""Candidate links for any JupyterHub authenticator.

`with_candidate_links(Base)` returns Base (the demo's shared password, OAuthenticator in
production, ...) plus what candidates need, in the places JupyterHub provides for it:

- `get_handlers`: the link handler (links.py), the candidates' only way in;
- `check_allowed`: the names of candidates' hub users are refused to every other login;
- `add_user` / `delete_user`: the candidate's system user when the hub runs as root;
- `pre_spawn_start`: only candidates get servers, and each server's environment gets
  the service's URL and a fresh session token from the service.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from jupyterhub.auth import Authenticator
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import Bool, Unicode

from ..api import hub as contract
from . import system_users
from .links import CandidateLinkHandler
from .service_client import ServiceClient, ServiceRefusal


class CandidateLinks(Authenticator):
    ib_service_url = Unicode(
        config=True, help="The ib service's URL as the hub reaches it, with its prefix "
                          "(e.g. http://127.0.0.1:8003/services/interview-buddy).")
    ib_service_token = Unicode(
        config=True, help="The ib service's hub API token: the hub calls the service with it "
                          "(set in the hub's configuration, never on a command line).")
    create_system_users = Bool(
        False, config=True, help="Make an unprivileged system user (with a private home) for "
                                 "each candidate: the hub runs as root with LocalProcessSpawner.")
    candidate_home_base = Unicode(
        "/home", config=True, help="Where candidates' homes are (made with their system users, "
                                   "or by the spawner); each is removed with its hub user.")

    _service: ServiceClient | None = None

    @property
    def ib_service(self) -> ServiceClient:
        if self._service is None:
            self._service = ServiceClient(self.ib_service_url, self.ib_service_token)
        return self._service

    def candidate_model(self, hub_user: str) -> dict:
        """The auth model of a candidate's hub user (groups: when the authenticator
        manages groups, membership must come with it)."""
        model = {"name": hub_user}
        if self.manage_groups:
            model["groups"] = [contract.CANDIDATES_GROUP]
        return model

    def get_handlers(self, app):
        return [*super().get_handlers(app),
                (rf"/{contract.LINK_PATH}/([^/]+)", CandidateLinkHandler)]

    def check_allowed(self, username, authentication=None):
        if contract.is_reserved_name(username):
            return False  # a candidate's hub user is entered only through its link
        return super().check_allowed(username, authentication)

    async def add_user(self, user):
        if self.create_system_users and contract.session_for(user.name):
            await system_users.ensure(user.name, self.candidate_home_base)
        await maybe_future(super().add_user(user))

    async def delete_user(self, user):
        await maybe_future(super().delete_user(user))
        if not contract.session_for(user.name):
            return
        if self.create_system_users:
            await system_users.remove(user.name)
        else:  # a home the spawner made as the hub's own user (SimpleLocalProcessSpawner)
            home = Path(self.candidate_home_base) / user.name
            if home.is_dir() and home.stat().st_uid == os.getuid():
                shutil.rmtree(home, ignore_errors=True)

    async def pre_spawn_start(self, user, spawner):
        await maybe_future(super().pre_spawn_start(user, spawner))
        if contract.session_for(user.name) is None:
            raise web.HTTPError(403, "Only candidates have servers on this hub. Interviewers: "
                                     f"the dashboards are at {contract.SERVICE_PREFIX}")
        try:
            prepared = await self.ib_service.prepare_spawn(user.name)
        except ServiceRefusal as e:
            raise web.HTTPError(410 if e.code == "session_ended" else 503, e.message) from None
        spawner.environment = {**spawner.environment, **prepared["environment"]}


def with_candidate_links(base: type[Authenticator]) -> type[Authenticator]:
    """`base` with candidate links (a no-op for a class that already has them)."""
    if issubclass(base, CandidateLinks):
        return base
    return type(f"{base.__name__}WithCandidateLinks", (CandidateLinks, base),
                {"__module__": __name__})
