"""Who is asking: decided here and nowhere else.

- interviewer: the service's own Jupyter authentication succeeded (token or login cookie);
- candidate: `Authorization: Bearer <candidate token>` names a session, and only that one;
- anonymous: anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.errors import IBError

if TYPE_CHECKING:
    from .core import Service
    from .sessions import Session

PUBLIC = "public"
CANDIDATE = "candidate"
INTERVIEWER = "interviewer"
ANONYMOUS = "anonymous"

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Principal:
    role: str
    session: Session | None = None


def candidate_session(authorization: str, service: Service | None) -> Session | None:
    """The session a `Bearer <candidate token>` header names, if it names one."""
    m = _BEARER.match(authorization or "")
    return service.session_for_token(m.group(1)) if m and service is not None else None


def resolve(current_user: object, authorization: str, service: Service | None) -> Principal:
    # The explicit credential wins: a candidate token in the header makes a candidate
    # even if the same client also carries the interviewer's login cookie.
    session = candidate_session(authorization, service)
    if session is not None:
        return Principal(CANDIDATE, session)
    if current_user is not None:
        return Principal(INTERVIEWER)
    return Principal(ANONYMOUS)


def require(principal: Principal, audience: str, authorization: str) -> None:
    """Raise 401/403 unless `principal` may use an operation meant for `audience`."""
    if audience == PUBLIC or principal.role == audience:
        return
    if principal.role == ANONYMOUS:
        if authorization:
            raise IBError("unauthorized", "This token is not valid here: it names no interview "
                          "session and is not the service's token.")
        raise IBError("unauthorized", "This route needs a token: a candidate token as "
                      "'Authorization: Bearer <token>' or the service's token.")
    raise IBError("forbidden", f"This route is for the {audience}; a {principal.role} "
                  "token cannot use it.")
