"""The service in a real Jupyter server: health, OpenAPI, create, chat via the openai SDK."""


from helpers import candidate_client


async def test_health_is_public_and_says_nothing_secret(jp_fetch):
    r = await jp_fetch("ib", "api", "health", headers={})
    assert r.code == 200


async def test_chat_roundtrip_with_openai_sdk(make_session, base_url, aio_interviewer):
    created = await make_session()
    client = candidate_client(base_url, created["candidate_token"])
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "How do I reverse a list?"}])
    assert "demo" in reply.choices[0].message.content.lower()
    s = (await aio_interviewer.get(f"/ib/api/sessions/{created['id']}")).json()
    assert s["tokens_used"] == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert s["status"] == "active"
