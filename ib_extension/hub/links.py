"""The candidate's link: `GET <hub>/hub/interview/<code>`.

The hub's own login handler for candidates (registered by the authenticator mixin). It
asks the ib service whose workspace the link opens, which decides the rules: valid, not
over, and claimed by this browser or by none yet (a random key in a signed cookie names
the browser). Then it signs the browser in as the session's hub user, a user made for
that session only, and starts its server, which lands on interview.ipynb.
"""

from __future__ import annotations

import secrets

from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.utils import new_token, url_path_join
from tornado import web

from ..api import hub as contract
from .service_client import ServiceRefusal

BROWSER_COOKIE = "ib-browser"
# How each refusal reads as an HTTP status on the page the candidate sees.
STATUS = {"session_ended": 410, "link_in_use": 409, "not_found": 404}
REASON = {"session_ended": "The interview is over", "link_in_use": "Open in another browser",
          "not_found": "Link not valid"}


class CandidateLinkHandler(BaseHandler):
    async def get(self, code: str) -> None:
        try:
            opened = await self.authenticator.ib_service.redeem(code, self._browser_key())
        except ServiceRefusal as e:
            status = STATUS.get(e.code, 503 if e.status >= 500 else e.status)
            raise web.HTTPError(status, e.message, reason=REASON.get(e.code)) from None
        user = await self.auth_to_user(self.authenticator.candidate_model(opened["hub_user"]))
        self._join_candidates(user)
        if opened["first_open"]:
            self._sign_out_elsewhere(user)
        self.set_login_cookie(user)
        self.log.info("candidate link opened for %s (session %s)", user.name,
                      opened["session_id"])
        self.redirect(url_path_join(self.hub.base_url, "spawn", user.escaped_name))

    def _browser_key(self) -> str:
        """This browser's random key, kept in a cookie signed with the hub's secret."""
        key = self.get_secure_cookie(BROWSER_COOKIE, max_age_days=self.cookie_max_age_days)
        if key:
            return key.decode()
        fresh = secrets.token_urlsafe(24)
        self._set_cookie(BROWSER_COOKIE, fresh, encrypted=True, path=self.hub.base_url)
        return fresh

    def _join_candidates(self, user) -> None:
        """Candidates' hub users are in one group: the service's hub scopes reach only it."""
        if self.authenticator.manage_groups:
            return  # the auth model carried the group
        group = orm.Group.find(self.db, contract.CANDIDATES_GROUP)
        if group is None:
            group = orm.Group(name=contract.CANDIDATES_GROUP)
            self.db.add(group)
        if group not in user.groups:
            group.users.append(user.orm_user)
        self.db.commit()

    def _sign_out_elsewhere(self, user) -> None:
        """A link opened for the first time (a new one after a re-issue, too) belongs to this
        browser only: end the hub login and server access of any other browser."""
        user.orm_user.cookie_id = new_token()
        for token in list(user.orm_user.api_tokens):
            if token.client_id and token.client_id != "jupyterhub":  # an OAuth login
                self.db.delete(token)
        self.db.commit()
