"""Who is asking: decided here and nowhere else.

- interviewer: the service's own Jupyter authentication succeeded (token or login cookie;
  on JupyterHub, a hub user with access to this service, i.e. in the group `interviewers`);
- candidate: `Authorization: Bearer <candidate token>` names a session, and only that one;
- hub: on JupyterHub, `Authorization: token <this service's own hub API token>`, which
  only the hub and the service hold (the hub redeeming a link, preparing a spawn);
- anonymous: anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.errors import IBError
from ..api.hub import INTERVIEWERS_GROUP

if TYPE_CHECKING:
    from .core import Service
    from .sessions import Session

PUBLIC = "public"
CANDIDATE = "candidate"
INTERVIEWER = "interviewer"
HUB = "hub"
ANONYMOUS = "anonymous"

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"^\s*token\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Principal:
    role: str
    session: Session | None = None
    refused_hub_user: str | None = None  # signed in to the hub, but no interviewer here


def candidate_session(authorization: str, service: Service | None) -> Session | None:
    """The session a `Bearer <candidate token>` header names, if it names one."""
    m = _BEARER.match(authorization or "")
    return service.session_for_token(m.group(1)) if m and service is not None else None


def not_an_interviewer(hub_user: str) -> str:
    return (f"The hub user {hub_user!r} is not an interviewer here: only members of the hub "
            f"group '{INTERVIEWERS_GROUP}' may use Interview Buddy's dashboards and "
            "interviewer API. Ask the hub's administrator to add you.")


def resolve(current_user: object, authorization: str, service: Service | None,
            refused_hub_user: str | None = None) -> Principal:
    # The explicit credential wins: a candidate token in the header makes a candidate
    # even if the same client also carries the interviewer's login cookie.
    session = candidate_session(authorization, service)
    if session is not None:
        return Principal(CANDIDATE, session)
    m = _TOKEN.match(authorization or "")
    if m and service is not None and service.workspaces is not None \
            and service.workspaces.hub.is_own_token(m.group(1)):
        return Principal(HUB)
    if current_user is not None:
        return Principal(INTERVIEWER)
    return Principal(ANONYMOUS, refused_hub_user=refused_hub_user)


def require(principal: Principal, audience: str, authorization: str) -> None:
    """Raise 401/403 unless `principal` may use an operation meant for `audience`."""
    if audience == PUBLIC or principal.role == audience:
        return
    if principal.refused_hub_user:
        raise IBError("forbidden", not_an_interviewer(principal.refused_hub_user))
    if principal.role == ANONYMOUS:
        if authorization:
            raise IBError("unauthorized", "This token is not valid here: it names no interview "
                          "session and is not the service's token.")
        raise IBError("unauthorized", "This route needs a token: a candidate token as "
                      "'Authorization: Bearer <token>' or the service's token (on JupyterHub, "
                      "an interviewer's hub login works too).")
    raise IBError("forbidden", f"This route is for the {audience}; a {principal.role} "
                  "token cannot use it.")
