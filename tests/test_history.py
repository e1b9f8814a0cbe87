"""Past sessions: filters, full-text search over conversations, pagination."""

from datetime import datetime, timezone

from helpers import candidate_client


async def test_filters_search_and_pagination(make_session, aio_interviewer, base_url, service, clock):
    created = []
    for i in range(7):
        created.append(await make_session(candidate_name=f"Candidate {i}"))
        clock.advance(86400)  # one a day
    client = candidate_client(base_url, created[2]["candidate_token"])
    await client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": "How does a zebrafish sort lists?"}])
    await aio_interviewer.post(f"/ib/api/sessions/{created[3]['id']}/end")

    async def ids(query):
        r = await aio_interviewer.get(f"/ib/api/sessions?{query}")
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["sessions"]], r.json()["total"]

    assert await ids("q=zebrafish") == ([created[2]["id"]], 1)  # found in the conversation
    assert await ids("candidate=candidate 5") == ([created[5]["id"]], 1)
    assert await ids("status=completed") == ([created[3]["id"]], 1)
    day = datetime.fromtimestamp(service.sessions[created[4]["id"]].created_at, timezone.utc)
    assert await ids(f"from={day:%Y-%m-%d}&to={day:%Y-%m-%d}") == ([created[4]["id"]], 1)
    newest_first = [c["id"] for c in reversed(created)]
    page1, total = await ids("limit=3")
    page2, _ = await ids("limit=3&offset=3")
    assert total == 7 and page1 + page2 == newest_first[:6]
