"""schemathesis against a real `ib serve`: every operation of the OpenAPI document, with
bodies and parameters generated from the document itself (so its `$ref`s must resolve and
its constraints be the server's), called with the credentials of the operation's
audience. A bounded, seeded run: a few examples per operation, derandomized.

Checks: no server error, every status and content type documented, every response body
valid against its documented schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 6


@pytest.fixture(scope="module")
def roles(live) -> dict[str, dict]:
    """Headers per audience; interviewer operations act on their own session, so the
    candidate's (another one) stays usable while they run."""
    watched = live.create_session(candidate_name="Watched by schemathesis")
    candidate = live.create_session(candidate_name="Candidate of schemathesis")
    return {
        "interviewer": {"headers": {"Authorization": f"token {live.token}"},
                        "session_id": watched["id"]},
        "candidate": {"headers": {"Authorization": f"Bearer {candidate['candidate_token']}"}},
        "public": {"headers": {}},
        # Only the hub's own API token reaches the hub's routes, and a service off the hub
        # has none: every call must be refused as documented.
        "hub": {"headers": {"Authorization": f"token {live.token}"}},
    }


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live.url}/ib/api/openapi.json")


def call(case, live, roles) -> None:
    [audience] = case.operation.definition.raw["tags"]
    role = roles[audience]
    if "session_id" in (case.path_parameters or {}) and "session_id" in role:
        case.path_parameters["session_id"] = role["session_id"]  # reach past the 404
    if "timeout" in (case.query or {}):
        case.query["timeout"] = 0  # a long-poll answers at once: a bounded run
    case.call_and_validate(base_url=live.url, headers=role["headers"], checks=CHECKS)


def test_every_operation_answers_as_documented(api_schema, live, roles):
    failures, operations = {}, 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                  database=None, suppress_health_check=list(HealthCheck))
        def run(case):
            call(case, live, roles)

        try:
            run()
        except Exception as e:  # collect every operation's failure, not just the first
            failures[operation.label] = f"{type(e).__name__}: {str(e)[:2000]}"
    assert operations > 25
    assert failures == {}


def test_the_document_refers_only_to_what_it_holds(api_schema, live):
    """Every `$ref` resolves inside the document (issue 9: chat bodies referred to `$defs`
    that were not there, so no valid body could be generated)."""
    import httpx

    doc = httpx.get(f"{live.url}/ib/api/openapi.json", timeout=30).json()
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert "#/components/schemas/UserMessage" in refs  # the chat body's messages, by role
    schemas = doc["components"]["schemas"]
    assert [r for r in refs if r.removeprefix("#/components/schemas/") not in schemas] == []
    assert "$defs" not in str(doc)
