"""Handlers of the hub's routes: the hub's link handler redeems a candidate link, and the
hub prepares a candidate's server before starting it (api/hub.py is the contract)."""

from __future__ import annotations

from ...api import hub as contract
from ...api.errors import IBError
from ..roles import HUB
from .base import IBHandler, Op


def workspaces(handler: IBHandler):
    """The service's workspaces, or a 409 when it does not run on JupyterHub."""
    found = handler.service.workspaces
    if found is None:
        raise IBError("conflict", "Candidate links and workspaces exist only when the service "
                                  "runs on JupyterHub (`ib hub`); hand the candidate their "
                                  "session token instead.")
    return found


class RedeemLinkHandler(IBHandler):
    ops = {"post": Op(HUB, "A browser opened a candidate link: whose workspace it opens",
                      body=contract.RedeemLink, response=contract.RedeemedLink)}

    async def post(self) -> None:
        req = self.body(contract.RedeemLink)
        self.reply(contract.RedeemedLink(**workspaces(self).redeem(req.code, req.browser)))


class PrepareSpawnHandler(IBHandler):
    ops = {"post": Op(HUB, "The environment of the candidate's server the hub is starting",
                      body=contract.PrepareSpawn, response=contract.SpawnEnvironment)}

    async def post(self) -> None:
        req = self.body(contract.PrepareSpawn)
        self.reply(contract.SpawnEnvironment(**workspaces(self).prepare_spawn(req.hub_user)))
