"""Who is signed in to the ib service when it runs as a JupyterHub service.

The service is a Jupyter server, so it authenticates the way a hub's single-user server
does: JupyterHub's own IdentityProvider, OAuth with the hub, access granted by the scope
`access:services!service=interview-buddy`, which `ib hub` gives the group `interviewers`
(so access is decided by the hub's groups and roles, not by user names). Two more
credentials are recognised before asking the hub, so that neither ever travels to it:

- `Authorization: token <IB_TOKEN>`: the interviewer token for scripts (`ib session`,
  `ib export --url <hub>/services/interview-buddy`);
- a candidate's session token, or the service's own hub token (the hub calling): these
  are no interviewer; roles.py decides what they are.

What a signed-in user may do is decided in roles.py; this module only says who it is.
"""

from __future__ import annotations

import re
from secrets import compare_digest

from jupyter_server.auth import User
from jupyterhub.services.auth import HubOAuth
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from tornado.web import HTTPError
from traitlets import Unicode, default

from .hubenv import hub_env
from .roles import not_an_interviewer
from .sessions import CANDIDATE_TOKEN_PREFIX

_AUTH = re.compile(r"^\s*(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
TOKEN_USER = "interviewer-token"


class HubIdentityProvider(JupyterHubIdentityProvider):
    # JupyterHub's provider uses the hub API token as the server's token; ours is IB_TOKEN.
    token = Unicode("", config=True,
                    help="The interviewer token for scripts (IB_TOKEN; `ib serve` sets it).")

    @default("hub_auth")
    def _default_hub_auth(self):
        env = hub_env()
        if env is None:
            raise RuntimeError("HubIdentityProvider needs the hub's managed-service "
                               "environment (run the service from `ib hub`).")
        return HubOAuth(parent=self, api_token=env.api_token, api_url=env.api_url)

    async def get_user(self, handler):
        m = _AUTH.match(handler.request.headers.get("Authorization", ""))
        if m:
            presented = m.group(1)
            if self.token and compare_digest(presented, self.token):
                # As Jupyter's own token: a header credential, exempt from XSRF checks.
                handler._token_authenticated = True
                return User(username=TOKEN_USER, name="Interviewer (token)")
            env = hub_env()
            if presented.startswith(CANDIDATE_TOKEN_PREFIX) or (
                    env is not None and compare_digest(presented, env.api_token)):
                return None
        user = await super().get_user(handler)
        refused = getattr(handler, "_cached_hub_user", None)
        if user is None and refused:
            # Signed in to the hub, but without access to this service: say why.
            handler.ib_refused_hub_user = refused["name"]
            message = not_an_interviewer(refused["name"])

            def refuse(*args, **kwargs):
                raise HTTPError(403, message)

            handler.redirect = refuse
        return user
