"""The live feed's cursor arithmetic, without a server."""

from session_records import RecordBuilder

from ib_extension.service.feed import Feed


def test_since_returns_exactly_what_came_after_the_cursor_and_resets_out_of_window():
    feed = Feed(window=5)
    seqs = [feed.publish(f"s{i % 2}", "event", {"n": i}) for i in range(8)]
    everyone = lambda item: True  # noqa: E731
    items, reset = feed.since(seqs[5], everyone)
    assert not reset and [it["seq"] for it in items] == seqs[6:]
    items, _ = feed.since(seqs[3], lambda it: it["session_id"] == "s1")
    assert [it["data"]["n"] for it in items] == [5, 7]
    assert "audience" not in items[0]
    assert feed.since(seqs[0], everyone) == ([], True)  # fell out of the 5-item window
    assert feed.since(seqs[-1] + 1, everyone) == ([], True)  # a cursor from the future
    assert feed.since(seqs[-1], everyone) == ([], False)


def test_a_published_view_is_read_as_its_dump_made_once():
    s = RecordBuilder().session
    feed = Feed()
    view = s.view(s.created_at + 60, [25, 10, 5])
    seq = feed.publish(s.id, "session", view, audience="interviewer")
    (item,), _ = feed.since(seq - 1, lambda it: True)
    assert item == {"seq": seq, "session_id": s.id, "kind": "session",
                    "data": view.model_dump()}
    (again,), _ = feed.since(seq - 1, lambda it: True)
    assert again["data"] is item["data"]  # every reader gets the one dump
