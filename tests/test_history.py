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


def test_conversation_search_is_a_plain_case_insensitive_substring(tmp_path):
    """Wildcards and backslashes in the search text are text (an ILIKE pattern without an
    ESCAPE clause took `50\\%` literally and found nothing)."""
    from ib_extension.service.store import Store

    store = Store(tmp_path / "ib.duckdb")
    store.open()
    try:
        for seq, (sid, content) in enumerate([("s_a", "Coverage is 50% now"),
                                              ("s_b", "use a_b here"),
                                              ("s_c", "500 items, axb, C:\\temp"),
                                              ("s_d", "A ZebraFish sorts")], start=1):
            store.submit(lambda *row: store.con.execute(  # the rows, not the write path
                "INSERT INTO messages (id, seq, session_id, role, content, status, created_at) "
                "VALUES (?, ?, ?, 'user', ?, 'complete', ?)", list(row)),
                f"m_{seq}", seq, sid, content, float(seq)).result()
        search = lambda text: store.submit(store.search_messages, text).result()  # noqa: E731
        assert search("50%") == {"s_a"}
        assert search("a_b") == {"s_b"}
        assert search("c:\\TEMP") == {"s_c"}
        assert search("zebrafish") == {"s_d"}
        assert search("nothing like it") == set()
    finally:
        store.close()
