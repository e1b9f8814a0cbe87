"""Past sessions: filters, full-text search over conversations, pagination."""

import threading
from datetime import datetime, timezone

import pytest
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


async def test_search_finds_every_word_as_the_start_of_a_word(make_session, aio_interviewer,
                                                               base_url):
    """A session matches when each word of the query starts a word of its conversation,
    in any message and any order, whatever the case."""
    said = {"both": ["I would use a Priority-Queue here.", "Or a min_heap."],
            "split": ["What is a priorityqueue?", "And queues in general?"],
            "one": ["Priority matters, nothing else."],
            "cjk": ["这个优先队列怎么用?"]}
    ids = {}
    for name, lines in said.items():
        s = await make_session(candidate_name=f"Candidate {name}")
        ids[s["id"]] = name
        client = candidate_client(base_url, s["candidate_token"])
        for line in lines:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": line}])

    async def found(q):
        r = await aio_interviewer.get("/ib/api/sessions", params={"q": q})
        assert r.status_code == 200, r.text
        return {ids[s["id"]] for s in r.json()["sessions"] if s["id"] in ids}

    assert await found("priority queue") == {"both", "split"}
    assert await found("QUEUE prior") == {"both", "split"}  # any order, any case
    assert await found("prior-queu") == {"both", "split"}  # punctuation only separates
    assert await found("priority") == {"both", "split", "one"}
    assert await found("min_heap") == {"both"}  # underscores are part of a word
    assert await found("riority") == set()  # inside a word is not the start of one
    assert await found("priority zebra") == set()
    assert await found("优先队列") == {"cjk"}  # no word to look up: a plain substring


async def test_the_index_from_the_file_agrees_with_the_live_one_and_the_scan(
        make_session, base_url, service):
    """What a restart fills from the file, what the service kept as messages were saved,
    and the scan that answers until the fill is done: the same sessions for every query."""
    from ib_extension.service.word_index import WordIndex, words

    lines = ["Sort the list with heapq.heappush", "What does O(n log n) mean?",
             "Use collections.Counter, then most_common(3)", "Ähnlich: naïve café_au_lait",
             "def f(x):\n    return x * 2  # doubles", "HEAP or heap? Both."]
    for i in range(len(lines)):
        s = await make_session(candidate_name=f"Candidate {i}")
        client = candidate_client(base_url, s["candidate_token"])
        for line in lines[i:i + 3]:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": line}])
    store = service.store
    refilled = WordIndex()
    with store.reader() as reader:
        refilled.fill(store.conversation_words(reader))
    queries = ["heap", "heapq heappush", "n log", "most_common 3", "caf", "na ve", "x 2",
               "doubles def", "both heap sort", "mean", "counter the", "zzz"]
    for q in queries:
        terms = sorted(words(q))
        scanned = store.submit(store.search_words, terms).result()
        assert service.words.match(terms) == refilled.match(terms) == scanned, q
    assert service.words.match(["heap"]) and not service.words.match(["zzz"])


async def test_messages_saved_while_the_index_fills_stay_in_it(make_session, base_url,
                                                                service, monkeypatch):
    from ib_extension.service import word_index

    monkeypatch.setattr(word_index, "MERGE_AT", 2)  # new words merge into the sorted list
    s = await make_session()
    client = candidate_client(base_url, s["candidate_token"])
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "an aardvark in the file"}])
    store = service.store
    index = word_index.WordIndex()
    with store.reader() as reader:
        chunks = store.conversation_words(reader)
        first = next(chunks)  # the file is read: what comes later is not in it
        index.add("s_later", "Zymurgy and aardwolf, saved while filling")
        index.fill([first, *chunks])
    assert index.ready
    assert index.match(["aardvark"]) == {s["id"]}
    assert index.match(["aard"]) == {s["id"], "s_later"}
    assert index.match(["zymurgy", "aardw"]) == {"s_later"}
    index.add("s_after", "zymology")
    assert index.match(["zym"]) == {"s_later", "s_after"}


@pytest.fixture
def gated_fill(monkeypatch):
    """Hold the index's fill from the file until the test opens the gate (set before the
    server starts, so the service's own start-up fill is the one held)."""
    from ib_extension.service.store import Store

    gate, real = threading.Event(), Store.conversation_words

    def held(reader, *args, **kwargs):
        assert gate.wait(60), "the test never opened the gate"
        yield from real(reader, *args, **kwargs)

    monkeypatch.setattr(Store, "conversation_words", staticmethod(held))
    yield gate
    gate.set()


async def test_searches_scan_while_the_index_fills_and_health_says_so(
        gated_fill, make_session, aio_interviewer, base_url, service):
    async def state():
        r = await aio_interviewer.get("/ib/api/health")
        assert r.status_code == 200, r.text
        return r.json()["search_index"]

    async def found(q):
        r = await aio_interviewer.get("/ib/api/sessions", params={"q": q})
        assert r.status_code == 200, r.text
        return {s["id"] for s in r.json()["sessions"]}

    s = await make_session()
    client = candidate_client(base_url, s["candidate_token"])
    await client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": "Can a zebrafish sort a priority queue?"}])
    try:
        assert await state() == "filling"
        assert not service.words.ready  # so the scan answers
        assert await found("Priority zebra") == {s["id"]}
        assert await found("riority") == set()
    finally:  # the server's shutdown joins the fill
        gated_fill.set()
    service._filling.join(30)
    assert await state() == "ready"
    assert await found("Priority zebra") == {s["id"]}
    assert await found("riority") == set()
