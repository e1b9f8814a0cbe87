"""Every /ib/ route in one table, and the OpenAPI document generated from it."""

from __future__ import annotations

import re
from typing import Any

from .. import __version__
from ..api import hub as contract
from .handlers import base as h
from .handlers import candidate as hc
from .handlers import hub as hh
from .handlers import interviewer as hi
from .roles import CANDIDATE, HUB, INTERVIEWER, PUBLIC

SID = "{session_id}"

# (path template, handler, initialize kwargs)
ROUTES: list[tuple[str, type[h.IBHandler], dict[str, Any]]] = [
    ("/ib/api/health", h.HealthHandler, {}),
    ("/ib/api/openapi.json", h.OpenAPIHandler, {}),
    ("/ib/v1/models", hc.ModelsV1Handler, {}),
    ("/ib/v1/chat/completions", hc.ChatCompletionsHandler, {}),
    ("/ib/api/me", hc.MeHandler, {}),
    ("/ib/api/me/messages", hc.MeMessagesHandler, {}),
    ("/ib/api/me/feed", hc.MeFeedHandler, {}),
    ("/ib/api/me/events", hc.MeEventsHandler, {}),
    ("/ib/api/me/submit", hc.MeSubmitHandler, {}),
    ("/ib/api/models", hi.ModelsHandler, {}),
    ("/ib/api/sessions", hi.SessionsHandler, {}),
    (f"/ib/api/sessions/{SID}", hi.SessionHandler, {}),
    *[(f"/ib/api/sessions/{SID}/{a}", hi.SessionActionHandler, {"action": a})
      for a in hi.SessionActionHandler.ACTIONS],
    (f"/ib/api/sessions/{SID}/extend-time", hi.ExtendTimeHandler, {}),
    (f"/ib/api/sessions/{SID}/extend-tokens", hi.ExtendTokensHandler, {}),
    (f"/ib/api/sessions/{SID}/token", hi.TokenHandler, {}),
    (f"/ib/api/sessions/{SID}/link", hi.LinkHandler, {}),
    (f"/ib/api/sessions/{SID}/messages", hi.SessionMessagesHandler, {}),
    (f"/ib/api/sessions/{SID}/events", hi.SessionEventsHandler, {}),
    (f"/ib/api/sessions/{SID}/record", hi.SessionRecordHandler, {}),
    (f"/ib/api/sessions/{SID}/grade", hi.GradeHandler, {}),
    ("/ib/api/feed", hi.FeedHandler, {}),
    ("/ib/api/challenges", hi.ChallengesHandler, {}),
    ("/ib/api/challenges/{challenge_id}", hi.ChallengeHandler, {}),
    (contract.REDEEM_ROUTE, hh.RedeemLinkHandler, {}),
    (contract.SPAWN_ROUTE, hh.PrepareSpawnHandler, {}),
]

_PARAM = re.compile(r"\{(\w+)\}")


def tornado_pattern(template: str) -> str:
    return _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", template)


def handlers(extra: list | None = None) -> list[tuple]:
    """Tornado URL specs for the service role (Jupyter prefixes its base_url), 404 last."""
    specs: list[tuple] = [(tornado_pattern(t), cls, kw) for t, cls, kw in ROUTES]
    specs += extra or []
    specs.append(("/ib/.*", h.NotFoundHandler))
    return specs


SECURITY = {
    PUBLIC: [],
    CANDIDATE: [{"candidateToken": []}],
    INTERVIEWER: [{"interviewerToken": []}, {"hubOAuth": []}],
    HUB: [{"hubServiceToken": []}],
}


def openapi(base_url: str = "/") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for template, cls, _ in ROUTES:
        item = paths.setdefault(template, {})
        for verb, op in cls.ops.items():
            operation: dict[str, Any] = {
                "tags": [op.audience],
                "summary": op.summary,
                "operationId": f"{verb}_{template.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
                "security": SECURITY[op.audience],
                "responses": {
                    str(op.success): {"description": "OK",
                                      "content": {"application/json": {}}},
                    "4XX": {"description": "Refused", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
            params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                      for n in _PARAM.findall(template)]
            params += [{"name": n, "in": "query", "required": False, "schema": {"type": t},
                        "description": d} for n, t, d in op.query]
            if params:
                operation["parameters"] = params
            if op.body is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": op.body.model_json_schema()}}}
            item[verb] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Interview Buddy service", "version": __version__,
                 "description": "See docs/API.md for the shapes and the live feed."},
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "tags": [{"name": PUBLIC}, {"name": CANDIDATE}, {"name": INTERVIEWER}, {"name": HUB}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "candidateToken": {"type": "http", "scheme": "bearer",
                                   "description": "The session's candidate token"},
                "interviewerToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                     "description": "'token <IB_TOKEN>' (Jupyter auth)"},
                "hubOAuth": {"type": "apiKey", "in": "cookie", "name": "service-interview-buddy",
                             "description": "On JupyterHub: the hub's OAuth login of a member "
                                            "of the group 'interviewers'"},
                "hubServiceToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                    "description": "On JupyterHub: 'token <the service's own "
                                                   "hub API token>', held by the hub alone"},
            },
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "type": {"type": "string"}, "param": {"type": ["string", "null"]}}}}}},
        },
    }
