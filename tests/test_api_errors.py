"""Bad input gets a 4xx with a sentence in one JSON error shape, and changes nothing."""

import json

import httpx
import pytest
from helpers import INTERVIEWER_TOKEN, session_body

ERROR_KEYS = {"code", "message", "type", "param"}


def assert_error_shape(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    err = body["error"]
    assert err["code"] == code
    # a sentence: starts with a capital, ends with a full stop, says something
    assert err["message"][0].isupper() and err["message"].rstrip().endswith((".", ")")), err
    assert "Traceback" not in r.text
    return err


BAD_CREATES = [
    ("malformed JSON", b"{not json", "invalid_request"),
    ("not an object", b"[1, 2]", "invalid_request"),
    ("wrong type", session_body(token_budget="5000"), "invalid_request"),
    ("unknown field", session_body(colour="blue"), "invalid_request"),
    ("negative budget", session_body(token_budget=-5), "invalid_request"),
    ("absurd budget", session_body(token_budget=10**12), "invalid_request"),
    ("absurd time", session_body(time_limit_seconds=10**9), "invalid_request"),
    ("zero time", session_body(time_limit_seconds=0), "invalid_request"),
    ("blank name", session_body(candidate_name="   "), "invalid_request"),
    ("bad email", session_body(candidate_email="not-an-email"), "invalid_request"),
    ("unknown model", session_body(model="gpt-nonexistent"), "invalid_request"),
    ("unknown policy", session_body(assist_policy="anything-goes"), "invalid_request"),
    ("no challenge", {k: v for k, v in session_body().items() if k != "challenge_text"},
     "invalid_request"),
    ("unknown challenge", session_body(challenge_text=None, challenge_id="no-such-challenge"),
     "invalid_request"),
    ("missing field", {"candidate_name": "X"}, "invalid_request"),
]


@pytest.mark.parametrize("body,code", [c[1:] for c in BAD_CREATES], ids=[c[0] for c in BAD_CREATES])
async def test_bad_create_is_refused_and_changes_nothing(aio_interviewer, service, body, code):
    before = len(service.sessions)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await aio_interviewer.post("/ib/api/sessions", content=content)
    assert_error_shape(r, 400, code)
    assert len(service.sessions) == before


async def test_oversize_body_is_413(aio_interviewer, service, ib_app):
    big = session_body(challenge_text="x" * (ib_app.max_body_bytes + 10))
    r = await aio_interviewer.post("/ib/api/sessions", json=big)
    assert_error_shape(r, 413, "payload_too_large")
    assert not service.sessions


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/ib/api/sessions/s_nope", None),
    ("POST", "/ib/api/sessions/s_nope/pause", None),
    ("POST", "/ib/api/sessions/s_nope/extend-time", {"seconds": 60}),
    ("GET", "/ib/api/sessions/s_nope/messages", None),
    ("GET", "/ib/api/sessions/s_nope/events", None),
    ("GET", "/ib/api/no/such/route", None),
])
async def test_unknown_ids_and_routes_are_404(aio_interviewer, method, path, body):
    r = await aio_interviewer.request(method, path, json=body)
    assert_error_shape(r, 404, "not_found")


async def test_wrong_method_is_405(aio_interviewer):
    r = await aio_interviewer.delete("/ib/api/sessions")
    assert_error_shape(r, 405, "method_not_allowed")


@pytest.mark.parametrize("path,body", [
    ("extend-time", {"seconds": 0}),
    ("extend-time", {"seconds": "60"}),
    ("extend-time", {"minutes": 5}),
    ("extend-tokens", {"tokens": -1}),
    ("extend-tokens", {}),
    ("pause", {"now": True}),
])
async def test_bad_control_bodies_change_nothing(aio_interviewer, make_session, service, path, body):
    sid = (await make_session())["id"]
    before = service.view(service.sessions[sid])
    r = await aio_interviewer.post(f"/ib/api/sessions/{sid}/{path}", json=body)
    assert_error_shape(r, 400, "invalid_request")
    assert service.view(service.sessions[sid]) == before


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "offset=-1", "limit=100000"])
async def test_bad_query_parameters(aio_interviewer, query):
    r = await aio_interviewer.get(f"/ib/api/sessions?{query}")
    assert_error_shape(r, 400, "invalid_request")


async def test_invalid_transition_is_409_with_a_sentence(aio_interviewer, make_session):
    sid = (await make_session())["id"]
    r = await aio_interviewer.post(f"/ib/api/sessions/{sid}/resume")
    err = assert_error_shape(r, 409, "conflict")
    assert "not started" in err["message"]
    assert r.headers["x-should-retry"] == "false"


BAD_CHATS = [
    ("no messages", {"model": "gpt-4o-mini", "messages": []}),
    ("unknown field", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                       "colour": "blue"}),
    ("bad role", {"messages": [{"role": "wizard", "content": "hi"}]}),
    ("content not text", {"messages": [{"role": "user", "content": 5}]}),
    ("image part", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}),
    ("audio part", {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}),
    ("lone surrogate", {"messages": [{"role": "user", "content": "bad \ud800 text"}]}),
    ("logprobs", {"messages": [{"role": "user", "content": "hi"}], "logprobs": True}),
    ("deprecated functions", {"messages": [{"role": "user", "content": "hi"}],
                              "functions": [{"name": "f", "parameters": {}}]}),
    ("audio output", {"messages": [{"role": "user", "content": "hi"}],
                      "modalities": ["text", "audio"]}),
    ("tool call without id", {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}]}),
    ("last not user", {"messages": [{"role": "assistant", "content": "hi"}]}),
    ("wrong model", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    ("empty message", {"messages": [{"role": "user", "content": "   "}]}),
    ("n > 1", {"messages": [{"role": "user", "content": "hi"}], "n": 3}),
    ("bad temperature", {"messages": [{"role": "user", "content": "hi"}], "temperature": 9}),
]


@pytest.mark.parametrize("body", [c[1] for c in BAD_CHATS], ids=[c[0] for c in BAD_CHATS])
async def test_bad_chat_requests_charge_nothing(base_url, make_session, service, body):
    created = await make_session()
    async with httpx.AsyncClient() as c:
        # json.dumps escapes a lone surrogate as \\ud800, as a JavaScript client would
        r = await c.post(base_url + "/ib/v1/chat/completions", content=json.dumps(body),
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    err = assert_error_shape(r, 400, "invalid_request")
    assert r.headers["x-should-retry"] == "false"
    assert ".str" not in err["message"] and "Input tag" not in err["message"]
    s = service.sessions[created["id"]]
    assert s.ledger.used == 0 and s.ledger.reserved == 0 and s.message_count == 0
    assert s.status == "created"  # a refused request is not activity: the clock has not started


async def test_refusals_name_the_field(base_url, make_session):
    created = await make_session()
    cases = [
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
         "Images are not allowed in this interview", "messages.0.content.0"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "'user'", "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]},
         "must be a string or a list of content parts", "messages.0.content"),
        ({"messages": [{"role": "user", "content": "x\udfff"}]}, "lone UTF-16 surrogate",
         "messages.0.content"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "one reply per request", "n"),
    ]
    async with httpx.AsyncClient() as c:
        for body, words, param in cases:
            r = await c.post(base_url + "/ib/v1/chat/completions", content=json.dumps(body),
                             headers={"Authorization": f"Bearer {created['candidate_token']}"})
            err = assert_error_shape(r, 400, "invalid_request")
            assert words in err["message"] and err["param"] == param, err


async def test_message_too_long(base_url, make_session, ib_app):
    created = await make_session()
    text = "a" * (ib_app.max_message_chars + 1)
    async with httpx.AsyncClient() as c:
        r = await c.post(base_url + "/ib/v1/chat/completions",
                         json={"messages": [{"role": "user", "content": text}]},
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    err = assert_error_shape(r, 400, "message_too_long")
    assert str(ib_app.max_message_chars) in err["message"]


@pytest.mark.parametrize("query", ["status=sleeping", "from=yesterday", "min_score=high"])
async def test_bad_list_filters(aio_interviewer, query):
    r = await aio_interviewer.get(f"/ib/api/sessions?{query}")
    assert_error_shape(r, 400, "invalid_request")


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
@pytest.mark.parametrize("route", ["/ib/api/sessions", "/ib/v1/chat/completions",
                                   "/ib/api/me/events"])
async def test_json_nested_1000_deep_is_a_400_not_a_500(base_url, make_session, service, route,
                                                       depth):
    created = await make_session()
    headers = ({"Authorization": f"Bearer {created['candidate_token']}"} if "me" in route
               or "v1" in route else {"Authorization": f"token {INTERVIEWER_TOKEN}"})
    deep = b'{"payload": ' + b"[" * depth + b"]" * depth + b"}"
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        r = await c.post(route, content=deep, headers=headers)
    err = assert_error_shape(r, 400, "invalid_request")
    assert "more than 64 levels deep" in err["message"]
    assert len(service.sessions) == 1 and service.usage[created["id"]].events == 0


async def test_json_nested_64_deep_is_still_read(base_url, make_session):
    created = await make_session()
    nested: dict = {}
    for _ in range(62):
        nested = {"n": nested}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        r = await c.post("/ib/api/me/events", json={"type": "activity.copy", "payload": nested},
                         headers={"Authorization": f"Bearer {created['candidate_token']}"})
    assert r.status_code == 201, r.text


async def test_to_9999_12_31_includes_everything_not_a_500(aio_interviewer, make_session):
    await make_session()
    r = await aio_interviewer.get("/ib/api/sessions", params={"to": "9999-12-31"})
    assert r.status_code == 200 and r.json()["total"] == 1


@pytest.mark.parametrize("query", ["from=9999-12-31T23:59:59-14:00", "to=0001-01-01T00:00:00+14:00",
                                   "from=10000-01-01", "to=2026-02-30"])
async def test_dates_at_the_edges_of_time_are_a_400_or_work_never_a_500(aio_interviewer, query):
    r = await aio_interviewer.get(f"/ib/api/sessions?{query}")
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert_error_shape(r, 400, "invalid_request")


async def test_models_retrieve_answers_for_the_session_model_only(base_url, make_session, service):
    import openai
    from helpers import candidate_client

    created = await make_session(model="gpt-4o")
    client = candidate_client(base_url, created["candidate_token"])
    with pytest.raises(openai.NotFoundError) as e:
        await client.models.retrieve("gpt-4o-mini")
    assert "'gpt-4o'" in e.value.message
    assert service.sessions[created["id"]].status == "created"  # a mistake is not activity
    model = await client.models.retrieve("gpt-4o")
    assert model.id == "gpt-4o" and model.object == "model"
