"""What the hub and the ib service agree on when Interview Buddy runs on JupyterHub.

The hub owns users, logins, spawning and the proxy; the service owns sessions. They meet
here: the service's name and URL prefix, the hub groups, how a session's hub user is
named, the candidate link's path, and the two calls the hub makes to the service (redeem
a link, prepare a spawn), authenticated with the service's own hub API token.
"""

from __future__ import annotations

import re

from pydantic import Field

from .models import Model
from .requests import Body

SERVICE_NAME = "interview-buddy"
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"
# Members of this hub group reach the dashboards and the interviewer API.
INTERVIEWERS_GROUP = "interviewers"
# Every hub user made for a session; the service's hub scopes are limited to this group.
CANDIDATES_GROUP = "ib-candidates"

# A session's hub user (and, when the hub runs as root, its system user): a valid Linux
# user name (lowercase, under 32 characters) that no interviewer login can produce.
_CANDIDATE_PREFIX = "ib-"
_SESSION_ID = re.compile(r"^s_[0-9a-f]{6,24}$")
_CANDIDATE_USER = re.compile(r"^ib-s-[0-9a-f]{6,24}$")


def hub_user_for(session_id: str) -> str:
    if not _SESSION_ID.match(session_id):
        raise ValueError(f"not a session id: {session_id!r}")
    return _CANDIDATE_PREFIX + session_id.replace("_", "-")


def session_for(hub_user: str) -> str | None:
    """The session a candidate's hub user was made for; None for any other name."""
    if not _CANDIDATE_USER.match(hub_user):
        return None
    return hub_user[len(_CANDIDATE_PREFIX):].replace("-", "_", 1)


def is_reserved_name(name: str) -> bool:
    """Names an interviewer's login may not take: they belong to candidates."""
    return name.lower().startswith(_CANDIDATE_PREFIX)


# The candidate's one-time link: <hub>/hub/interview/<code>
LINK_PATH = "interview"
LINK_PREFIX = "ibl_"
# The hub's calls to the service (hub audience).
REDEEM_ROUTE = "/ib/api/hub/links/redeem"
SPAWN_ROUTE = "/ib/api/hub/spawn"


class RedeemLink(Body):
    """A browser opened a candidate link: `browser` is that browser's own random key."""

    code: str = Field(min_length=8, max_length=200)
    browser: str = Field(min_length=16, max_length=200)


class PrepareSpawn(Body):
    """The hub is about to start a candidate's server."""

    hub_user: str = Field(min_length=1, max_length=100)


class RedeemedLink(Model):
    """Whose workspace a link opens (`first_open`: this browser just claimed it)."""

    session_id: str
    hub_user: str
    first_open: bool


class SpawnEnvironment(Model):
    """What the hub puts in the environment of the candidate's server it starts."""

    session_id: str
    environment: dict[str, str]
