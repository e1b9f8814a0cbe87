"""The store's write path on a real DuckDB file: rows are journaled, then a batch moves in
with DuckDB reading the journal's files itself (big batches), or from Python (small ones,
and what DuckDB refuses); every test runs both ways.

Rows come from the real builders (Session.to_row, the gateway's message rows, catalogue
events), written through `Store.save_*` as the service writes them.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import pytest
from session_records import RecordBuilder

from ib_extension.api.events import check_payload
from ib_extension.service.gateway import _message
from ib_extension.service.journal import Journal
from ib_extension.service.store import TABLES, Encoded, Store, _encode

# Text the journal's JSON and DuckDB's JSON reader must carry exactly.
AWKWARD = ("It's \"quoted\", back\\slashed,\nmulti-line\tand tabbed; "
           "émoji 🧪, 漢字, a line separator \u2028 and a NUL \x00 at the end")


def session_row(**changes):
    s = RecordBuilder().session
    for k, v in changes.items():
        setattr(s, k, v)
    return s, s.to_row()


def message_row(s, seq: int, role: str, content: str, **fields):
    return {**_message(s, role, content, 1_767_225_600.0 + seq, **fields), "seq": seq}


def event_row(s, event_id: int, type_: str, **payload):
    check_payload(type_, payload)
    return {"id": event_id, "session_id": s.id, "type": type_, "actor": "candidate",
            "payload": Encoded(json.dumps(payload)), "at": 1_767_225_600.0 + event_id}


@pytest.fixture(params=[0, 10**9], ids=["read by DuckDB", "bound from Python"])
def store(tmp_path, request):
    # Batches held back: only a read (or closing) moves the journal in. Every batch goes
    # the one way or the other, whatever its size.
    store = Store(tmp_path / "ib.duckdb", batch_seconds=3600, file_import_keys=request.param)
    store.open()
    yield store
    store.close()


def read(store, fn, *args):
    return store.submit(fn, *args).result()


def test_a_batch_keeps_the_latest_row_of_each_key_and_every_character(store, caplog):
    s, row = session_row(candidate_name=AWKWARD)
    store.save_session(row)
    question = message_row(s, 1, "user", AWKWARD)
    reply = message_row(s, 2, "assistant", "", status="streaming")
    store.save_message(question, new=True)  # first writes, as Service.save_message does
    store.save_message(reply, new=True)
    store.save_message({**reply, "content": "Half"})
    store.save_message({**reply, "content": AWKWARD, "status": "complete",
                        "completion_tokens": 12})
    s.message_count, s.flags = 2, {"injection": 1, "note": AWKWARD}
    store.save_session(s.to_row())
    store.save_event(event_row(s, 1, "chat.completed", message_id=reply["id"],
                               prompt_tokens=3, completion_tokens=12, latency_ms=40))

    with caplog.at_level(logging.WARNING, logger="ib_extension.service.store"):
        messages = read(store, store.messages, s.id)
    assert "did not go in whole" not in caplog.text  # no fallback: the batch went its way
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", AWKWARD, "complete"), ("assistant", AWKWARD, "complete")]
    assert messages[1]["completion_tokens"] == 12
    assert messages[1]["created_at"] == reply["created_at"]  # doubles exactly
    (saved,) = read(store, store.load_sessions)
    assert saved == json.loads(json.dumps(s.to_row()))  # the later row, JSON columns whole
    (event,) = read(store, store.events, s.id)
    assert event["payload"]["message_id"] == reply["id"]


def test_rows_written_again_replace_the_committed_ones(store):
    s, row = session_row()
    store.save_session(row)
    assert read(store, store.load_sessions)[0]["status"] == "created"
    store.save_session({**row, "status": "active", "started_at": 1_767_225_601.5})
    (saved,) = read(store, store.load_sessions)
    assert (saved["status"], saved["started_at"]) == ("active", 1_767_225_601.5)


def test_a_new_row_rewritten_in_a_later_batch_replaces_the_committed_one(store):
    """Only rewritten keys are deleted as a batch moves in: a reply's first row goes in as
    new, its final row comes in the next batch and must replace it, not sit beside it."""
    s, row = session_row()
    store.save_session(row)
    reply = message_row(s, 1, "assistant", "", status="streaming")
    store.save_message(reply, new=True)
    store.save_event(event_row(s, 1, "chat.completed", message_id=reply["id"],
                               prompt_tokens=3, completion_tokens=0, latency_ms=40))
    assert [m["status"] for m in read(store, store.messages, s.id)] == ["streaming"]
    store.save_message({**reply, "content": "Done.", "status": "complete"})
    store.save_event(event_row(s, 2, "chat.completed", message_id=reply["id"],
                               prompt_tokens=3, completion_tokens=2, latency_ms=40))
    assert [(m["content"], m["status"]) for m in read(store, store.messages, s.id)] == [
        ("Done.", "complete")]
    assert [e["id"] for e in read(store, store.events, s.id)] == [1, 2]


def test_a_row_duckdb_refuses_keeps_none_of_the_others_out(store, caplog):
    s, row = session_row()
    store.save_session(row)
    store.save_message(message_row(s, 1, "user", "kept"))
    store.save_message({**message_row(s, 2, "assistant", "x"), "content": None})  # NOT NULL
    store.save_message(message_row(s, 3, "user", "kept too"))
    with caplog.at_level(logging.WARNING, logger="ib_extension.service.store"):
        messages = read(store, store.messages, s.id)
    assert [m["content"] for m in messages] == ["kept", "kept too"]
    assert read(store, store.load_sessions)[0]["id"] == s.id
    assert "could not be written" in caplog.text
    assert not list(store._journal.directory.glob("*.jsonl")), "the segment is gone"


def test_a_replay_replaces_committed_rows_whatever_the_last_process_knew(tmp_path):
    """Which keys a killed process had rewritten died with it: a replay deletes every key
    its segments hold, so a rewrite of a committed row replaces it."""
    path = tmp_path / "ib.duckdb"
    s, row = session_row()
    store = Store(path)
    store.open()
    reply = message_row(s, 1, "assistant", "Half", status="streaming")
    store.save_message(reply, new=True)
    store.close()
    journal = Journal(path.with_name(path.name + ".journal"))
    journal.open()
    journal.append("messages", _encode(TABLES["messages"][0],
                                       {**reply, "content": "Whole.", "status": "complete"}))
    journal.close()

    store = Store(path)
    store.open()
    try:
        assert [(m["content"], m["status"]) for m in read(store, store.messages, s.id)] == [
            ("Whole.", "complete")]
    finally:
        store.close()


def test_a_killed_writes_partial_last_line_is_skipped_and_the_rest_replayed(tmp_path):
    """What a SIGKILL leaves: a segment never moved in, its last line cut short."""
    path = tmp_path / "ib.duckdb"
    s, row = session_row()
    journal = Journal(path.with_name(path.name + ".journal"))
    journal.open()
    journal.append("sessions", _encode(TABLES["sessions"][0], row))
    journal.append("messages", _encode(TABLES["messages"][0], message_row(s, 1, "user", "Hi")))
    journal.close()
    (messages_file,) = journal.directory.glob("*.messages.jsonl")
    with open(messages_file, "a", encoding="utf-8") as f:
        f.write('{"id": "m_cut", "seq": 2, "session_id": "')  # the write a kill cut short

    store = Store(path)
    store.open()
    try:
        assert [m["content"] for m in read(store, store.messages, s.id)] == ["Hi"]
        assert [r["id"] for r in read(store, store.load_sessions)] == [s.id]
        assert not list(journal.directory.glob("*.jsonl")), "replayed segments are gone"
    finally:
        store.close()


def _moved_in(path, within: float = 30.0) -> bool:
    """Whether the journal next to `path` empties (its rows moved into DuckDB) within
    `within` seconds, without any read asking for them."""
    journal = path.with_name(path.name + ".journal")
    deadline = time.monotonic() + within
    while list(journal.glob("*.jsonl")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _mover_waits(store) -> bool:
    """Whether the journal's mover thread is blocked in a wait (with rows pending, that is
    the wait for its batch to fill)."""
    frame = sys._current_frames().get(store._mover.ident)
    return frame is not None and frame.f_code.co_name == "wait"


@pytest.mark.parametrize("keys, wait_at_most", [(5, 3600), (1, 0.05)],
                         ids=["full batch", "small batch"])
def test_a_batch_moves_once_full_or_at_the_longest_wait(tmp_path, keys, wait_at_most):
    """A batch of `file_import_keys` keys moves after `batch_seconds` (here none), not
    after `batch_max_seconds`, also when it fills while the mover waits; a smaller one
    moves when that is up."""
    path = tmp_path / "ib.duckdb"
    store = Store(path, batch_seconds=0, batch_max_seconds=wait_at_most, file_import_keys=5)
    store.open()
    try:
        s, _ = session_row()
        store.save_message(message_row(s, 1, "user", "Question 1"), new=True)
        if keys > 1:  # the rest come while the mover waits for the batch to fill
            deadline = time.monotonic() + 30
            while not _mover_waits(store):
                assert time.monotonic() < deadline, "the mover never waited"
                time.sleep(0.01)
        for seq in range(2, keys + 1):
            store.save_message(message_row(s, seq, "user", f"Question {seq}"), new=True)
        assert _moved_in(path)
        assert len(read(store, store.messages, s.id)) == keys
    finally:
        store.close()
