"""One truth for every number: a real `ib serve` whose provider bills differently from the
service's estimate (the demo model's [[skew:F]]), and the session, the analytics summary,
the replay's last step and every export agree on tokens and time."""

from __future__ import annotations

import json

import httpx
import nbformat

from ib_extension.review import analytics, export
from ib_extension.review.replay import timeline
from ib_extension.review.sections import _duration

SKEW = "[[skew:1.7]]"  # the provider counts 1.7 times the tokens tiktoken does


def ask(live, created, text: str) -> None:
    r = httpx.post(f"{live.url}/ib/v1/chat/completions", timeout=30,
                   headers={"Authorization": f"Bearer {created['candidate_token']}"},
                   json={"model": created["session"]["model"],
                         "messages": [{"role": "user", "content": text}]})
    r.raise_for_status()


def played(live) -> tuple[dict, dict]:
    created = live.create_session(candidate_name="Skewed Billing", token_budget=50_000)
    sid = created["id"]
    ask(live, created, f"How do I start? {SKEW} [[tokens:80]]")
    live.client.action(sid, "pause")
    live.client.action(sid, "resume")
    ask(live, created, f"And then? {SKEW} [[tokens:40]]")
    live.client.action(sid, "end")
    return live.client.session(sid), live.client.record(sid)


def test_every_side_counts_what_the_provider_billed(live):
    session, record = played(live)
    questions = [m for m in record["messages"] if m["role"] == "user"]
    estimated = sum(m["prompt_tokens"] for m in questions)
    assert session["tokens_prompt"] > estimated * 1.5  # the provider billed otherwise

    summary = analytics.summary(record)
    last = timeline(record)[-1]
    document = json.loads(export.render(record, "json"))
    tokens = session["tokens_used"]
    assert tokens == session["tokens_prompt"] + session["tokens_completion"]
    assert tokens == summary["tokens_total"] == last.tokens == document["summary"]["tokens_total"]
    assert tokens == analytics.token_timeline(record)[-1]["tokens"]
    assert (summary["tokens_prompt"], summary["tokens_completion"]) == (
        session["tokens_prompt"], session["tokens_completion"])

    used = session["time_used_seconds"]
    assert used == summary["time_used_seconds"] == document["summary"]["time_used_seconds"]
    assert abs(last.time_used - used) < 0.002  # the clock's readings, to the millisecond
    assert summary["time_paused_seconds"] == session["time_paused_seconds"]
    active = sum(r["seconds"] for r in analytics.time_utilisation(record)
                 if r["state"] == "active")
    assert abs(active - used) < 0.01

    # What a reviewer reads says the same.
    review = nbformat.reads(export.render(record, "ipynb"), as_version=4).cells[0].source
    for text in (review, export.render(record, "md")):
        assert f"| Tokens billed | {tokens:,} of 50,000" in text
        assert f"| Time used | {_duration(used)} of" in text
