"""Every /ib/ route in one table, and the OpenAPI document generated from it."""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from .. import __version__
from ..api import hub as contract
from ..api.errors import KINDS
from ..api.requests import SESSION_ID
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
    ("/ib/v1/models/{model_id}", hc.ModelV1Handler, {}),
    ("/ib/v1/chat/completions", hc.ChatCompletionsHandler, {}),
    ("/ib/v1/responses", hc.ResponsesHandler, {}),
    ("/ib/api/me", hc.MeHandler, {}),
    ("/ib/api/me/messages", hc.MeMessagesHandler, {}),
    ("/ib/api/me/feed", hc.MeFeedHandler, {}),
    ("/ib/api/me/events", hc.MeEventsHandler, {}),
    ("/ib/api/me/submit", hc.MeSubmitHandler, {}),
    ("/ib/api/me/opened", hc.MeOpenedHandler, {}),
    ("/ib/api/me/hand-in", hc.MeHandInHandler, {}),
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
    (f"/ib/api/sessions/{SID}/events/{{event_id}}", hi.SessionEventHandler, {}),
    (f"/ib/api/sessions/{SID}/record", hi.SessionRecordHandler, {}),
    (f"/ib/api/sessions/{SID}/grade", hi.GradeHandler, {}),
    ("/ib/api/feed", hi.FeedHandler, {}),
    ("/ib/api/challenges", hi.ChallengesHandler, {}),
    ("/ib/api/challenges/{challenge_id}", hi.ChallengeHandler, {}),
    (contract.REDEEM_ROUTE, hh.RedeemLinkHandler, {}),
    (contract.SPAWN_ROUTE, hh.PrepareSpawnHandler, {}),
]

_PARAM = re.compile(r"\{(\w+)\}")


def largest_body(default_limit: int) -> int:
    """The largest request body any route accepts (`default_limit` where it names none)."""
    return max(op.max_body or default_limit for _, cls, _ in ROUTES for op in cls.ops.values())


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
# What a path parameter may be; the service answers anything else with a 404.
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "session_id": {"type": "string", "pattern": f"^{SESSION_ID.pattern}$"},
    "event_id": {"type": "integer", "minimum": 1},
    "challenge_id": {"type": "string", "minLength": 1, "maxLength": 200,
                     "pattern": "^[A-Za-z0-9_.-]+$"},
}
ERROR = {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {
    "error": {"type": "object", "required": ["code", "message", "type", "param"], "properties": {
        "code": {"type": "string", "enum": sorted(KINDS)}, "message": {"type": "string"},
        "type": {"type": "string"}, "param": {"type": ["string", "null"]}}}}}


def _component_schemas() -> tuple[dict[tuple, Any], dict[str, Any]]:
    """Every request body (validation) and response (serialization) model as a component,
    their nested models too, so each `$ref` in the document resolves."""
    keyed = {(op.body, "validation") for _, cls, _ in ROUTES for op in cls.ops.values()
             if op.body is not None}
    keyed |= {(op.response, "serialization") for _, cls, _ in ROUTES
              for op in cls.ops.values() if op.response is not None}
    refs, top = models_json_schema(sorted(keyed, key=lambda k: (k[0].__name__, k[1])),
                                   ref_template="#/components/schemas/{model}")
    return refs, top.get("$defs", {})


def _query_schema(kind: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": kind} if isinstance(kind, str) else kind


def _responses(op: h.Op, refs: dict[tuple, Any]) -> dict[str, Any]:
    body = (refs[(op.response, "serialization")] if op.response is not None
            else {"type": ["object", "array"]})
    success = {"application/json": {"schema": body}}
    if op.streams:
        success["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        str(op.success): {"description": "OK", "content": success},
        "4XX": {"description": "Refused, with a sentence saying why", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    }


def openapi(base_url: str = "/",
            choices: dict[tuple[str, str], list[str]] | None = None) -> dict[str, Any]:
    """The document, derived from the route table and the wire models (api/requests.py,
    api/models.py): a new route or field shows up here without more code. `choices` are
    what this service offers for a (model, field), such as its models: they become the
    field's `enum`."""
    refs, components = _component_schemas()
    for (name, field), values in (choices or {}).items():
        prop = components.get(name, {}).get("properties", {}).get(field)
        if prop is not None:
            nullable = [{"type": "null"}] if "null" in str(prop) else []
            components[name]["properties"][field] = {"anyOf": [{"enum": list(values)}, *nullable]}
    paths: dict[str, Any] = {}
    for template, cls, _ in ROUTES:
        item = paths.setdefault(template, {})
        for verb, op in cls.ops.items():
            operation: dict[str, Any] = {
                "tags": [op.audience],
                "summary": op.summary,
                "operationId": f"{verb}_{template.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
                "security": SECURITY[op.audience],
                "responses": _responses(op, refs),
            }
            params = [{"name": n, "in": "path", "required": True,
                       "schema": PATH_PARAMS.get(n, {"type": "string"})}
                      for n in _PARAM.findall(template)]
            params += [{"name": n, "in": "query", "required": False, "schema": _query_schema(t),
                        "description": d} for n, t, d in op.query]
            params += [{"name": n, "in": "header", "required": False, "schema": t,
                        "description": d} for n, t, d in op.headers]
            if params:
                operation["parameters"] = params
            if op.body is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": refs[(op.body, "validation")]}}}
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
            "schemas": {**components, "Error": ERROR},
        },
    }
