"""What the ib service adds to one chat request, next to what a LiteLLM proxy adds, in
front of the same offline demo model, in the same run.

    python benchmarks/overhead.py [--runs 400] [--warmup 10] [--reply-tokens 50]
                                  [--latency 0] [--tokens-per-second 0] [--no-litellm]
                                  [--no-relay]
                                  [--history-tokens 0] [--json FILE]

It starts the demo model, `ib serve` (per-session rate limit off, a budget no run
reaches) and, when `make bench` has made its virtualenv, a LiteLLM proxy as real
processes on free loopback ports, and makes one session. Then, with the official
`openai` SDK, it sends the same chat three ways (direct to the demo model, via ib, via
LiteLLM), round-robin so that drift on the machine hits all alike: first `--runs`
streamed requests per target, then `--runs` not streamed. Then, in a pass of its own
against direct calls again, the bare relay (benchmarks/relay.py: tornado's server and
aiohttp's client passing bytes on, nothing else), the floor of a Python hop; its own pass
keeps the main block's length, over which the CPU per request is taken, what it was.
It prints p50/p95/p99 (nearest rank) of time to first token and total time, the
milliseconds ib, LiteLLM and the relay add over direct (percentile minus the same
percentile of direct), ib's added as a fraction of LiteLLM's, and the CPU time the
service and the proxies spent per streamed request (utime+stime from /proc over the
streamed block, divided by its requests).
Not a test: nothing is asserted.

With `--history-tokens N` every request carries a conversation of about N tokens before
its question, as a candidate's client resends it each turn. The conversation is made
through ib first, turn by turn (questions of 7,500 characters, replies of 1,000 tokens),
so that its replies are the service's own; then each measured request asks a new
question after it, on every path. It also times, in this process, the service's prompt
estimate of such a turn (`ConversationCache`, which the service keeps per
session) beside a count of the whole request.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

import httpx
import openai
import procs

IDLE_SECONDS = 3.0
SETTLE_SECONDS = 2.5  # more than the service's database_batch_max_seconds (2 s)


@dataclass
class Timing:
    first_token: float  # seconds from sending the request to the first text delta
    total: float  # seconds from sending the request to the end of the answer


def timed_stream(client: openai.OpenAI, model: str, messages: list[dict]) -> Timing:
    started = time.perf_counter()
    first = None
    stream = client.chat.completions.create(model=model, stream=True, messages=messages)
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    end = time.perf_counter()
    if first is None:
        raise RuntimeError("the stream carried no text")
    return Timing(first - started, end - started)


def timed_plain(client: openai.OpenAI, model: str, messages: list[dict]) -> Timing:
    started = time.perf_counter()
    answer = client.chat.completions.create(model=model, messages=messages)
    end = time.perf_counter()
    if not answer.choices[0].message.content:
        raise RuntimeError("the answer carried no text")
    return Timing(end - started, end - started)


@dataclass
class Target:
    name: str
    client: openai.OpenAI | None  # None: not installed
    pid: int | None = None  # the gateway's process, for its CPU time
    streamed: list[Timing] | None = None
    plain: list[Timing] | None = None
    cpu_ms: float | None = None  # per streamed request
    idle_ms_per_s: float | None = None  # CPU while no request runs
    idle_share_ms: float | None = None  # that idle rate over the streamed block, per request
    side_ms: float | None = None  # of cpu_ms, what threads other than the main one spent


def round_robin(targets: list[Target], runs: int, fn, model: str, ask: Asking,
                ) -> dict[str, list[Timing]]:
    out: dict[str, list[Timing]] = {t.name: [] for t in targets}
    for i in range(runs):
        messages = ask.next()  # the same request on every path
        # Rotate who goes first too, so that no target always follows the same one.
        for t in targets[i % len(targets):] + targets[:i % len(targets)]:
            out[t.name].append(fn(t.client, model, messages))
    return out


class Asking:
    """The requests: a conversation (empty, or made by `make_history`), then a question;
    with a conversation each request's question is new, as a turn's is."""

    def __init__(self, reply_tokens: int, history: list[dict] | None = None):
        self.reply_tokens, self.history, self.asked = reply_tokens, history or [], 0

    def next(self) -> list[dict]:
        self.asked += 1
        turn = f" (question {self.asked})" if self.history else ""
        return [*self.history, {"role": "user", "content": f"{procs.QUESTION}{turn} "
                                                           f"[[tokens:{self.reply_tokens}]]"}]


HISTORY_QUESTION_CHARS = 7_500  # under the service's 8,000-character limit of a question
HISTORY_REPLY_TOKENS = 1_000  # under its 1,024-token cap of a reply


def make_history(client: openai.OpenAI, model: str, tokens: int) -> tuple[list[dict], int]:
    """A conversation of about `tokens` prompt tokens, made through ib turn by turn (each
    question a candidate's pasted code and output, each reply the service's); it and the
    prompt tokens the last turn was billed."""
    history: list[dict] = []
    billed = 0
    while billed < tokens:
        n = len(history) // 2
        line = f"    result_{n} = solve(case_{n}, limit={n * 17 % 101})  # check {n}\n"
        head = (f"[[tokens:{HISTORY_REPLY_TOKENS}]] Turn {n}: here is my code and its "
                "output again.\n\n```python\n")
        lines = (HISTORY_QUESTION_CHARS - len(head) - 4) // len(line)
        question = head + line * lines + "```"
        history.append({"role": "user", "content": question})
        answer = client.chat.completions.create(model=model, messages=history)
        history.append({"role": "assistant", "content": answer.choices[0].message.content})
        billed = answer.usage.prompt_tokens
    return history, billed


def estimate_times(history: list[dict], model: str, turns: int = 50) -> dict:
    """Milliseconds of the service's prompt estimate for a new turn after `history`, with
    the counts it keeps per conversation, and of counting the whole request afresh. Each
    turn's messages are parsed anew from JSON, as the service gets them."""
    from ib_extension.service import tokens
    from ib_extension.service.conversation_cache import ConversationCache

    asking = Asking(1, history)
    counts = ConversationCache(model)
    counts.count(asking.next())  # the turns before: counted once
    kept, whole = [], []
    for _ in range(turns):
        messages = json.loads(json.dumps(asking.next()))
        started = time.perf_counter()
        counts.count(messages)
        kept.append(time.perf_counter() - started)
        started = time.perf_counter()
        tokens.count_message_tokens(messages, model)
        whole.append(time.perf_counter() - started)
    return {"turn p50": procs.percentile(kept, 50) * 1000,
            "turn p99": procs.percentile(kept, 99) * 1000,
            "whole request p50": procs.percentile(whole, 50) * 1000}


def http_budget(url: str, token: str, session: dict) -> int:
    """Tokens the session has left, as the interviewer sees it."""
    with httpx.Client() as http:
        view = http.get(f"{url}/ib/api/sessions/{session['session']['id']}", timeout=60,
                        headers={"Authorization": f"token {token}"}).json()
    return view["tokens_left"]


def _check_budget(left: int, billed: int, args) -> None:
    """Every request through ib is billed the conversation: stop before the budget would."""
    per_request = billed + 100 + args.reply_tokens
    fits = left // per_request
    if 2 * (args.warmup + args.runs) > fits:
        raise SystemExit(f"A session's budget holds {fits} more requests of {per_request} "
                         f"tokens; --warmup {args.warmup} and --runs {args.runs} need "
                         f"{2 * (args.warmup + args.runs)} (streamed and not). Ask for fewer.")


def measure(targets: list[Target], args, model: str, ask: Asking) -> None:
    live = [t for t in targets if t.client is not None]
    round_robin(live, args.warmup, timed_stream, model, ask)
    round_robin(live, args.warmup, timed_plain, model, ask)

    # The gateways' CPU while nobody calls them (timers, background writers), to judge
    # how much of the CPU per request below is the requests' own; from when the warm-up's
    # last write batch has moved (the service waits up to database_batch_max_seconds).
    time.sleep(SETTLE_SECONDS)
    idle = {t.name: procs.cpu_seconds(t.pid) for t in live if t.pid}
    time.sleep(IDLE_SECONDS)
    for t in live:
        if t.pid:
            t.idle_ms_per_s = (procs.cpu_seconds(t.pid) - idle[t.name]) * 1000 / IDLE_SECONDS

    gateways = [t for t in live if t.pid]
    before = {t.name: (procs.cpu_seconds(t.pid), procs.side_thread_cpu_seconds(t.pid))
              for t in gateways}
    started = time.monotonic()
    streamed = round_robin(live, args.runs, timed_stream, model, ask)
    streamed_seconds = time.monotonic() - started
    after = {t.name: (procs.cpu_seconds(t.pid), procs.side_thread_cpu_seconds(t.pid))
             for t in gateways}
    plain = round_robin(live, args.runs, timed_plain, model, ask)
    for t in live:
        t.streamed, t.plain = streamed[t.name], plain[t.name]
        if t.pid:
            t.cpu_ms, t.side_ms = ((a - b) * 1000 / args.runs
                                   for a, b in zip(after[t.name], before[t.name], strict=True))
            t.idle_share_ms = t.idle_ms_per_s * streamed_seconds / args.runs


def results(targets: list[Target], floor: list[Target]) -> dict:
    """The numbers the table shows, by metric: {"streamed TTFT p50": {"direct": ms, ...}}.
    `floor`: the bare relay's own pass, [direct, relay] (or none)."""
    by_name = {t.name: t for t in targets}
    direct = by_name["direct"]
    rows: dict[str, dict] = {}
    for label, kind, attr in (("streamed TTFT", "streamed", "first_token"),
                              ("streamed total", "streamed", "total"),
                              ("not streamed total", "plain", "total")):
        for p in (50, 95, 99):
            row = {}
            for t in targets:
                samples = getattr(t, kind)
                row[t.name] = (None if samples is None else
                               procs.percentile([getattr(s, attr) for s in samples], p) * 1000)
            for name in ("ib", "litellm"):
                have = row.get(name) is not None
                row[f"{name} added"] = row[name] - row["direct"] if have else None
            if floor:  # against the direct calls of its own pass
                relay, base = (procs.percentile([getattr(s, attr) for s in getattr(t, kind)],
                                                p) * 1000 for t in reversed(floor))
                row["relay"], row["relay added"] = relay, relay - base
            row["ib/litellm"] = (row["ib added"] / row["litellm added"]
                                 if row["litellm added"] and row["litellm added"] > 0 else None)
            rows[f"{label} p{p}"] = row
    rows["CPU per streamed request"] = {t.name: t.cpu_ms for t in targets + floor[1:]}
    rows["CPU per streamed request"]["direct"] = None
    rows["  of which idle rate"] = {t.name: t.idle_share_ms for t in targets + floor[1:]}
    rows["  of which idle rate"]["direct"] = None
    rows["  of which side threads"] = {t.name: t.side_ms for t in targets + floor[1:]}
    rows["  of which side threads"]["direct"] = None
    if direct.streamed is None:
        raise RuntimeError("no direct measurements")
    return rows


def _ms(v: float | None, absent: str = "—", sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return absent
    return f"{v:+.1f}ms" if sign else f"{v:.1f}ms"


def table(rows: dict, litellm_absent: str) -> str:
    head = (f"{'':26}{'direct':>10}{'via ib':>10}{'via LiteLLM':>15}"
            f"{'ib added':>11}{'LiteLLM added':>15}{'ib/LiteLLM':>12}{'relay added':>13}")
    lines = [head]
    for label, row in rows.items():
        ratio = row.get("ib/litellm")
        lines.append(
            f"{label:26}{_ms(row.get('direct')):>10}{_ms(row.get('ib')):>10}"
            f"{_ms(row.get('litellm'), litellm_absent):>15}"
            f"{_ms(row.get('ib added'), '', True):>11}"
            f"{_ms(row.get('litellm added'), '', True):>15}"
            f"{'' if ratio is None else f'{ratio:.2f}':>12}"
            # latency rows: what the bare relay adds; CPU rows: the relay's own CPU
            f"{_ms(row.get('relay added', row.get('relay')), '', 'relay added' in row):>13}")
    return "\n".join(lines)


def litellm_version() -> str:
    found = sorted(procs.LITELLM_VENV.glob("lib/python*/site-packages/litellm-*.dist-info"))
    return found[-1].name.removeprefix("litellm-").removesuffix(".dist-info") if found else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=400, help="measured requests per target and mode")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured requests per target first")
    ap.add_argument("--reply-tokens", type=int, default=50, help="length of each reply")
    ap.add_argument("--latency", type=float, default=0.0,
                    help="the demo model's seconds before the first token")
    ap.add_argument("--tokens-per-second", type=float, default=0.0,
                    help="the demo model's streaming pace (0 = as fast as it can)")
    ap.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    ap.add_argument("--no-relay", action="store_true",
                    help="leave out the bare relay (benchmarks/relay.py, the floor of a hop)")
    ap.add_argument("--history-tokens", type=int, default=0,
                    help="a conversation of about this many tokens before each question "
                         "(made through ib first)")
    procs.add_output_args(ap)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.reply_tokens < 1 or args.history_tokens < 0:
        ap.error("--runs and --reply-tokens must be at least 1, --warmup and "
                 "--history-tokens at least 0")

    use_litellm = not args.no_litellm and procs.litellm_installed()
    litellm_absent = "off" if args.no_litellm else "not installed"
    running = []
    started = time.monotonic()
    load_before = procs.load_average()
    with procs.workdir(args.logs) as workdir:
        try:
            llm, llm_url = procs.start_demo_model(workdir, args.latency, args.tokens_per_second)
            running.append(llm)
            token = procs.new_token()
            service, url = procs.start_service(workdir, llm_url, token)
            running.append(service)
            with httpx.Client() as http:
                session = procs.create_session(http, url, token)
            model = session["session"]["model"]  # the same name on every path
            targets = [
                Target("direct", openai.OpenAI(base_url=llm_url, api_key="bench", max_retries=0)),
                Target("ib", openai.OpenAI(base_url=url + "/ib/v1",
                                           api_key=session["candidate_token"], max_retries=0),
                       service.pid),
                Target("litellm", None),
            ]
            floor: list[Target] = []
            if not args.no_relay:
                relay, relay_url = procs.start_relay(workdir, llm_url)
                running.append(relay)
                floor = [Target("direct", openai.OpenAI(base_url=llm_url, api_key="bench",
                                                        max_retries=0)),
                         Target("relay", openai.OpenAI(base_url=relay_url, api_key="bench",
                                                       max_retries=0), relay.pid)]
            if use_litellm:
                proxy, proxy_url, key = procs.start_litellm(workdir, llm_url, model)
                running.append(proxy)
                targets[2] = Target("litellm", openai.OpenAI(
                    base_url=proxy_url, api_key=key, max_retries=0), proxy.pid)
            ask, billed, estimate = Asking(args.reply_tokens), 0, None
            if args.history_tokens:
                history, billed = make_history(targets[1].client, model, args.history_tokens)
                _check_budget(http_budget(url, token, session), billed, args)
                ask, estimate = Asking(args.reply_tokens, history), estimate_times(history, model)
            measure(targets, args, model, ask)
            if floor:  # a pass of its own: the main block's CPU per request stays as it was
                measure(floor, args, model, ask)
            for t in targets + floor:
                if t.client is not None:
                    t.client.close()
        finally:
            procs.stop(running)

    rows = results(targets, floor)
    pace = (f"{args.tokens_per_second:g} tokens/s" if args.tokens_per_second
            else "as fast as it can")
    settings = procs.service_settings(procs.BENCH_CONFIG)
    print(f"Chat requests, {args.runs} per target and mode (round-robin) after {args.warmup} "
          f"warm-up, replies of {args.reply_tokens} tokens; demo model: first token after "
          f"{args.latency:g} s, then {pace}. {time.monotonic() - started:.0f} s in all.")
    print("ib service: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print("LiteLLM: " + (f"{litellm_version()}, one uvicorn worker" if use_litellm
                         else litellm_absent))
    print(f"Machine load average: {load_before} before, {procs.load_average()} after.\n")
    if args.history_tokens:
        print(f"Each request carries a conversation of {len(ask.history)} messages made "
              f"through ib ({billed} prompt tokens billed for its last turn, the service's "
              "instructions included), then a new question.\n")
    print(table(rows, litellm_absent))
    if estimate is not None:
        print(f"\nThe service's prompt estimate of one such turn (in this process, 50 turns): "
              f"{estimate['turn p50']:.2f} ms p50, {estimate['turn p99']:.2f} ms p99 with the "
              f"counts it keeps per conversation; {estimate['whole request p50']:.1f} ms "
              "p50 counting the whole request afresh.")
    print("\nadded = the percentile via the gateway minus the same percentile direct; "
          "ib/LiteLLM = ib added / LiteLLM added.\nCPU = utime+stime of the gateway's "
          "process (and children) over the streamed block / its requests; of which idle "
          f"rate = its CPU rate over {IDLE_SECONDS:g} s with no request, times the block's "
          "duration / its requests\n(what it would have spent anyway); of which side threads = "
          "the CPU of its threads other than the main one (ib: DuckDB's and the journal's).")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "reply_tokens": args.reply_tokens,
                                         "litellm": use_litellm, "rows": rows,
                                         "history_tokens": billed, "estimate_ms": estimate},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
