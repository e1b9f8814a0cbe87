"""The conversation the service keeps between turns: each message's tokens and JSON are
made once, and what it reuses always equals what counting and encoding afresh give."""

from __future__ import annotations

import json

import pytest

from ib_extension.service import conversation_cache as cc
from ib_extension.service import tokens

MODEL = "gpt-4o-mini"


def conversation(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "You are the interview's assistant."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Question {i}: how do I sort {i} items?"})
        messages.append({"role": "assistant", "content": f"Use sorted() on the {i} items.",
                         "tool_calls": [{"id": f"c{i}", "type": "function",
                                         "function": {"name": "run", "arguments": "{}"}}]})
    return messages


@pytest.fixture
def made(monkeypatch) -> dict[str, list]:
    """The messages counted and encoded afresh, as the cache calls on them."""
    made: dict[str, list] = {"counted": [], "encoded": []}
    count, dumps = cc.count_message_tokens, cc.fast_json.dumps
    monkeypatch.setattr(cc, "count_message_tokens",
                        lambda messages, model: made["counted"].append(messages[0])
                        or count(messages, model))
    monkeypatch.setattr(cc.fast_json, "dumps",
                        lambda value: made["encoded"].append(value) or dumps(value))
    return made


def fresh(messages: list[dict]) -> tuple[int, list]:
    return tokens.count_message_tokens(messages, MODEL), messages


def turn(cache: cc.ConversationCache, messages: list[dict]) -> tuple[int, list]:
    """What a turn of the gateway asks of the cache: the estimate, then the JSON."""
    return cache.count(messages), json.loads(cache.json(messages))


def test_a_turn_counts_and_encodes_only_its_new_messages(made):
    cache = cc.ConversationCache(MODEL)
    short, longer = conversation(3), conversation(5)
    assert turn(cache, short) == fresh(short)
    made["counted"].clear(), made["encoded"].clear()
    assert turn(cache, longer) == fresh(longer)
    assert made["counted"] == made["encoded"] == longer[len(short):]  # the four new only
    # The JSON of a list the estimate did not just match is matched afresh.
    assert json.loads(cache.json([dict(m) for m in short])) == short
    assert made["encoded"] == longer[len(short):]  # nothing encoded again
    # A message repeated in one request counts (and is sent) each time it appears.
    twice = longer + [longer[1]]
    assert turn(cache, twice) == fresh(twice)


def test_a_trimmed_history_reuses_what_it_kept_and_an_edit_is_made_afresh(made):
    cache = cc.ConversationCache(MODEL)
    turn(cache, conversation(4))
    made["counted"].clear(), made["encoded"].clear()
    # A client that drops the oldest turn to fit its context: every place shifts.
    trimmed = conversation(4)[:1] + conversation(4)[3:]
    assert turn(cache, trimmed) == fresh(trimmed)
    assert made["counted"] == made["encoded"] == []
    # An edit of the same length: what it shares with the old text is its shape only.
    edited = [dict(m) for m in trimmed]
    edited[1]["content"] = edited[1]["content"].replace("sort", "SORT")
    assert turn(cache, edited) == fresh(edited)
    assert made["counted"] == made["encoded"] == [edited[1]]


def test_counting_without_keeping_leaves_the_conversation_alone(made):
    cache = cc.ConversationCache(MODEL)
    history = conversation(4)
    turn(cache, history)
    other = [history[0], {"role": "user", "content": ""}]
    assert cache.count(other, keep=False) == tokens.count_message_tokens(other, MODEL)
    made["counted"].clear(), made["encoded"].clear()
    assert turn(cache, history) == fresh(history)
    assert made["counted"] == made["encoded"] == []  # still remembered: nothing made again


def test_messages_must_be_dicts():
    with pytest.raises(TypeError, match="messages must be dicts"):
        cc.ConversationCache(MODEL).count(["hello"])
