"""Persistence: stop the real `ib serve` (SIGTERM, or SIGKILL in the middle of a stream),
start it again on the same data dir, and the API answers as before.

Everything here goes through real processes and real HTTP; the only stand-in is the
offline demo model. Nothing sleeps to let time pass: tests poll for conditions.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import openai
import pytest
from helpers import wait_for
from live import LiveService, start_service, stop_service

from ib_extension.service.tokens import count_tokens

MODEL = "gpt-4o-mini"
# Fields of a session view that move with the wall clock while the session is active.
RUNNING_CLOCK_FIELDS = ("time_used_seconds", "time_left_seconds", "deadline")



def new_session(live: LiveService, **fields) -> dict:
    return live.create_session(model=MODEL, **fields)


def candidate(live: LiveService, created: dict) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/ib/v1", api_key=created["candidate_token"],
                         max_retries=0, timeout=30)


def ask(live: LiveService, created: dict, text: str):
    with candidate(live, created) as client:
        return client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}])


def snapshot(live: LiveService) -> dict:
    """What the interviewer API says about every session, its messages and its events."""
    page = live.client.list_sessions(limit=500)
    sessions = {s["id"]: s for s in page["sessions"]}
    assert page["total"] == len(sessions)
    return {
        "sessions": sessions,
        "messages": {sid: live.client.messages(sid)["messages"] for sid in sessions},
        "events": {sid: live.client.events(sid)["events"] for sid in sessions},
    }


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def assert_same_session(before: dict, after: dict, elapsed: float) -> None:
    """Equal, except that an active session's clock ran on while the service was down
    (within the wall time that passed between the two reads), toward the same deadline."""
    if before["status"] == "paused":  # the paused span runs on instead of the clock
        paused_on = after["time_paused_seconds"] - before["time_paused_seconds"]
        assert 0 <= paused_on <= elapsed
        before = {**before, "time_paused_seconds": after["time_paused_seconds"]}
    if before["status"] != "active":
        assert after == before
        return

    def steady(s: dict) -> dict:
        return {k: v for k, v in s.items() if k not in RUNNING_CLOCK_FIELDS}

    assert steady(after) == steady(before)
    ran_on = after["time_used_seconds"] - before["time_used_seconds"]
    assert 0 <= ran_on <= elapsed
    assert after["time_left_seconds"] == pytest.approx(before["time_left_seconds"] - ran_on,
                                                       abs=0.01)
    assert abs(_ts(after["deadline"]) - _ts(before["deadline"])) <= 0.002


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_sigterm_and_restart_keeps_sessions_messages_and_events(fake_llm_url, data_dir):
    live = start_service(fake_llm_url, data_dir)
    try:
        paused = new_session(live, candidate_name="Paused Pat", token_budget=8000)
        extended = new_session(live, candidate_name="Extended Eve", time_limit_seconds=900)
        locked = new_session(live, candidate_name="Locked Lou")
        ended = new_session(live, candidate_name="Ended Ed")
        for s in (paused, extended, ended):
            assert ask(live, s, f"How do I sort a list, {s['session']['candidate_name']}?")
        live.client.action(paused["id"], "pause")
        live.client.extend_time(extended["id"], 600)
        live.client.extend_tokens(extended["id"], 2500)
        live.client.action(locked["id"], "lock")
        live.client.action(ended["id"], "end")
        read_at = time.monotonic()
        before = snapshot(live)
    finally:
        stop_service(live)
    assert live.proc.returncode == 0, "SIGTERM should stop the service cleanly"

    live = start_service(fake_llm_url, data_dir)
    try:
        after = snapshot(live)
        elapsed = time.monotonic() - read_at  # bounds how far a running clock moved

        # The states this test set up, so that the comparison below is not vacuous.
        view = before["sessions"]
        assert view[paused["id"]]["status"] == "paused"
        assert view[extended["id"]]["time_limit_seconds"] == 1500
        assert view[extended["id"]]["token_budget"] == 20000 + 2500
        assert view[locked["id"]]["locked"] is True
        assert view[ended["id"]]["status"] == "completed"
        assert all(view[s["id"]]["tokens_used"] > 0 for s in (paused, extended, ended))

        assert after["sessions"].keys() == before["sessions"].keys()
        for sid, was in before["sessions"].items():
            assert_same_session(was, after["sessions"][sid], elapsed)
        assert after["messages"] == before["messages"]
        assert after["events"] == before["events"]

        # The restored state is enforced, not only displayed; candidate tokens still work.
        with pytest.raises(openai.ConflictError) as refused:
            ask(live, paused, "Still there?")
        assert refused.value.code == "session_paused"
        with pytest.raises(openai.PermissionDeniedError) as refused:
            ask(live, ended, "Still there?")
        assert refused.value.code == "session_ended"
        used = after["sessions"][extended["id"]]["tokens_used"]
        reply = ask(live, extended, "And how do I reverse a string?")
        now = live.client.session(extended["id"])
        assert now["tokens_used"] == used + reply.usage.total_tokens
    finally:
        stop_service(live)


def test_sigkill_right_after_the_answers_loses_nothing_acknowledged(fake_llm_url, tmp_path):
    """Rows reach DuckDB in batches, and the journal holds them until then. With batches
    held back for an hour, what was acknowledged before a SIGKILL is only in the journal,
    and the restarted service has all of it."""
    data_dir = tmp_path / "data"
    held = tmp_path / "held_batches.py"
    held.write_text("c.IBExtension.database_batch_seconds = 3600\n")
    live = start_service(fake_llm_url, data_dir, extra_args=["--config", str(held)])
    try:
        created = [new_session(live, candidate_name=f"Burst {i}") for i in range(4)]
        replies = [ask(live, c, f"Question {i}: how do I sort a list?")
                   for i, c in enumerate(created)]
        live.client.action(created[0]["id"], "pause")
        live.proc.kill()
        live.proc.wait(10)
        journal = list((data_dir / "ib.duckdb.journal").glob("*.jsonl"))
        assert sum(p.stat().st_size for p in journal) > 0, "the last rows wait in the journal"
    finally:
        stop_service(live)

    live = start_service(fake_llm_url, data_dir)
    try:
        for c, reply in zip(created, replies, strict=True):
            messages = live.client.messages(c["id"])["messages"]
            assert [(m["role"], m["status"]) for m in messages] == [
                ("user", "complete"), ("assistant", "complete")]
            assert messages[1]["content"] == reply.choices[0].message.content
            assert live.client.session(c["id"])["tokens_used"] == reply.usage.total_tokens
        assert live.client.session(created[0]["id"])["status"] == "paused"
        assert not set(journal) & set((data_dir / "ib.duckdb.journal").glob("*.jsonl")), \
            "the replayed segments are gone once their rows are in DuckDB"
    finally:
        stop_service(live)


@pytest.fixture(scope="module")
def killed_mid_stream(fake_llm_url, tmp_path_factory):
    """SIGKILL the service while it streams a slow reply, then start it again.

    Yields the restarted service and what the client saw before the kill.
    """
    data_dir = tmp_path_factory.mktemp("killed") / "data"
    question = "Explain recursion slowly [[slow:5]] [[tokens:200]]"
    live = start_service(fake_llm_url, data_dir)
    received: list[str] = []
    stream_errors: list[BaseException] = []
    try:
        created = new_session(live, candidate_name="Killed Kim", token_budget=5000)

        def read_stream() -> None:
            try:
                with candidate(live, created) as client:
                    stream = client.chat.completions.create(
                        model=MODEL, stream=True,
                        messages=[{"role": "user", "content": question}])
                    for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            received.append(chunk.choices[0].delta.content)
            except Exception as e:  # the connection dies with the service: expected
                stream_errors.append(e)

        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()

        def flushed_reply():
            for m in live.client.messages(created["id"])["messages"]:
                if m["role"] == "assistant" and m["status"] == "streaming" and m["content"]:
                    return m
            return None

        # Some deltas have been written to the file: now kill the service mid-stream.
        flushed = wait_for(flushed_reply, "the streaming reply's first flush")
        live.proc.kill()
        live.proc.wait(10)
        reader.join(30)
        assert not reader.is_alive(), "the client's stream should end when the service dies"
        assert stream_errors, "the stream cannot have finished: its 200 tokens take 40 s"
    finally:
        stop_service(live)

    live = start_service(fake_llm_url, data_dir)
    try:
        yield {"live": live, "created": created, "question": question,
               "flushed": flushed["content"], "sent": "".join(received)}
    finally:
        stop_service(live)


def restarted_state(killed: dict) -> tuple[dict, dict, dict]:
    """(session, user message, assistant message) as the restarted service reports them."""
    live, sid = killed["live"], killed["created"]["id"]
    messages = live.client.messages(sid)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    return live.client.session(sid), messages[0], messages[1]


def test_sigkill_keeps_the_question_and_the_reply_text_flushed_so_far(killed_mid_stream):
    _, user, reply = restarted_state(killed_mid_stream)
    assert user["content"] == killed_mid_stream["question"]
    assert user["status"] == "complete"
    assert reply["status"] == "interrupted"
    # At least what was flushed before the kill, and nothing the client was never sent.
    assert reply["content"].startswith(killed_mid_stream["flushed"])
    assert killed_mid_stream["sent"].startswith(reply["content"])


def test_sigkill_charges_prompt_and_recorded_completion_and_holds_no_reservation(
        killed_mid_stream):
    s, user, reply = restarted_state(killed_mid_stream)
    assert reply["completion_tokens"] == count_tokens(reply["content"], s["model"]) > 0
    assert reply["prompt_tokens"] == user["prompt_tokens"] > 0
    assert s["tokens_prompt"] == user["prompt_tokens"]
    assert s["tokens_completion"] == reply["completion_tokens"]
    assert s["tokens_used"] == s["tokens_prompt"] + s["tokens_completion"]
    assert s["tokens_reserved"] == 0
    assert s["tokens_left"] == s["token_budget"] - s["tokens_used"]
    cuts = killed_mid_stream["live"].client.events(s["id"], "chat.cut")["events"]
    assert [(e["payload"]["message_id"], e["payload"]["reason"]) for e in cuts] == [
        (reply["id"], "service_restarted")]


def test_sigkill_keeps_the_message_count(killed_mid_stream):
    s, _, _ = restarted_state(killed_mid_stream)
    assert s["message_count"] == 2


def test_session_killed_mid_stream_works_again(killed_mid_stream):
    live, created = killed_mid_stream["live"], killed_mid_stream["created"]
    s, _, _ = restarted_state(killed_mid_stream)
    answer = ask(live, created, "What is a base case?")
    assert answer.choices[0].message.content
    later = live.client.session(created["id"])
    assert later["tokens_used"] == s["tokens_used"] + answer.usage.total_tokens
    assert later["tokens_reserved"] == 0
    assert [m["role"] for m in live.client.messages(created["id"])["messages"]] == [
        "user", "assistant", "user", "assistant"]
