"""Every route × every kind of caller: roles are decided in one place and hold everywhere."""

import re

import httpx
import pytest
from helpers import INTERVIEWER_TOKEN

from ib_extension.service.routes import ROUTES

CALLERS = ["anonymous", "candidate", "other_candidate", "interviewer"]


def operations():
    for template, cls, _ in ROUTES:
        for verb, op in cls.ops.items():
            yield template, verb.upper(), op.audience


def allowed(audience: str, caller: str) -> bool:
    if audience == "public":
        return True
    if audience == "candidate":
        return caller in ("candidate", "other_candidate")
    return caller == audience


@pytest.mark.parametrize("template,method,audience", list(operations()),
                         ids=[f"{m} {t}" for t, m, _ in operations()])
async def test_every_route_for_every_caller(base_url, make_session, template, method, audience):
    mine = await make_session(candidate_name="Mine")
    other = await make_session(candidate_name="Other")
    headers = {
        "anonymous": {},
        "candidate": {"Authorization": f"Bearer {mine['candidate_token']}"},
        "other_candidate": {"Authorization": f"Bearer {other['candidate_token']}"},
        "interviewer": {"Authorization": f"token {INTERVIEWER_TOKEN}"},
    }
    path = template.replace("{session_id}", mine["id"])
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        for caller in CALLERS:
            params = {"cursor": "0", "timeout": "0"} if path.endswith("/feed") else None
            r = await c.request(method, path, headers=headers[caller], params=params,
                                content=b"{}" if method == "POST" else None)
            if allowed(audience, caller):
                assert r.status_code not in (401, 403), (caller, r.text)
            else:
                assert r.status_code in (401, 403), (caller, r.status_code, r.text)
                assert r.json()["error"]["code"] in ("unauthorized", "forbidden")
                assert mine["id"] not in r.text  # a refusal reveals nothing about the session
            if caller == "other_candidate" and r.status_code == 200 and "/me" in path:
                assert mine["id"] not in r.text  # a candidate only ever sees its own session


async def test_candidate_me_is_its_own_session(base_url, make_session):
    a = await make_session(candidate_name="A")
    b = await make_session(candidate_name="B")
    async with httpx.AsyncClient(base_url=base_url) as c:
        for created in (a, b):
            r = await c.get("/ib/api/me", headers={"Authorization": f"Bearer {created['candidate_token']}"})
            assert r.json()["id"] == created["id"]
            assert "flags" not in r.json() and "candidate_email" not in r.json()


async def test_rotated_token_replaces_the_old_one(base_url, make_session, aio_interviewer):
    created = await make_session()
    r = await aio_interviewer.post(f"/ib/api/sessions/{created['id']}/token")
    new = r.json()["candidate_token"]
    async with httpx.AsyncClient(base_url=base_url) as c:
        old = await c.get("/ib/api/me", headers={"Authorization": f"Bearer {created['candidate_token']}"})
        fresh = await c.get("/ib/api/me", headers={"Authorization": f"Bearer {new}"})
    assert old.status_code == 401
    assert fresh.json()["id"] == created["id"]


async def test_openapi_lists_every_route_with_its_audience(base_url, jp_serverapp):
    async with httpx.AsyncClient(base_url=base_url) as c:
        doc = (await c.get("/ib/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    # Every /ib/ pattern the server actually routes (but the catch-all 404) is documented.
    served = set()
    for rule in jp_serverapp.web_app.default_router.rules:
        for sub in getattr(rule.target, "rules", []):
            pattern = sub.matcher.regex.pattern
            if "/ib/" in pattern and not pattern.endswith("/ib/.*$"):
                served.add(re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}",
                                  pattern.split("/ib/", 1)[1].rstrip("$")))
    documented = {p.split("/ib/", 1)[1] for p in doc["paths"]}
    assert served, "no /ib/ routes found on the server"
    assert served == documented
    security = {"public": [], "candidate": [{"candidateToken": []}],
                "interviewer": [{"interviewerToken": []}, {"hubOAuth": []}],
                "hub": [{"hubServiceToken": []}]}
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            assert len(op["tags"]) == 1 and op["tags"][0] in security, (path, verb)
            assert op["security"] == security[op["tags"][0]], (path, verb)
            for scheme in op["security"]:
                assert set(scheme) <= set(doc["components"]["securitySchemes"])


async def test_health_says_nothing_secret(base_url, make_session, ib_app):
    await make_session()
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await c.get("/ib/api/health")
    assert r.status_code == 200
    assert set(r.json()) == {"status", "version", "sessions_active", "search_index"}
    for secret in (INTERVIEWER_TOKEN, ib_app.llm_base_url, ib_app.data_dir):
        assert secret not in r.text


async def test_a_candidate_token_wins_over_an_interviewer_cookie(base_url, make_session):
    created = await make_session()
    async with httpx.AsyncClient(base_url=base_url) as c:
        login = await c.get("/ib/api/sessions", headers={"Authorization": f"token {INTERVIEWER_TOKEN}"})
        assert login.status_code == 200 and c.cookies  # Jupyter set its login cookie
        me = await c.get("/ib/api/me", headers={"Authorization": f"Bearer {created['candidate_token']}"})
        assert me.status_code == 200 and me.json()["id"] == created["id"]
        listing = await c.get("/ib/api/sessions",
                              headers={"Authorization": f"Bearer {created['candidate_token']}"})
        assert listing.status_code == 403
