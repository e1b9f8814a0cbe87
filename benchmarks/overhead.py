"""What the ib service adds to one chat request, next to what a LiteLLM proxy adds, in
front of the same offline demo model, in the same run.

    python benchmarks/overhead.py [--runs 400] [--warmup 10] [--reply-tokens 50]
                                  [--latency 0] [--tokens-per-second 0] [--no-litellm]
                                  [--json FILE]

It starts the demo model, `ib serve` (per-session rate limit off, a budget no run
reaches) and, when `make bench` has made its virtualenv, a LiteLLM proxy as real
processes on free loopback ports, and makes one session. Then, with the official
`openai` SDK, it sends the same chat three ways (direct to the demo model, via ib, via
LiteLLM), round-robin so that drift on the machine hits all alike: first `--runs`
streamed requests per target, then `--runs` not streamed. It prints p50/p95/p99
(nearest rank) of time to first token and total time, the milliseconds ib and LiteLLM
add over direct (percentile minus the same percentile of direct), ib's added as a
fraction of LiteLLM's, and the CPU time the service and the proxy spent per streamed
request (utime+stime from /proc over the streamed block, divided by its requests).
Not a test: nothing is asserted.
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


@dataclass
class Timing:
    first_token: float  # seconds from sending the request to the first text delta
    total: float  # seconds from sending the request to the end of the answer


def timed_stream(client: openai.OpenAI, model: str, content: str) -> Timing:
    started = time.perf_counter()
    first = None
    stream = client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": content}])
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    end = time.perf_counter()
    if first is None:
        raise RuntimeError("the stream carried no text")
    return Timing(first - started, end - started)


def timed_plain(client: openai.OpenAI, model: str, content: str) -> Timing:
    started = time.perf_counter()
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}])
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


def round_robin(targets: list[Target], runs: int, fn, model: str, content: str,
                ) -> dict[str, list[Timing]]:
    out: dict[str, list[Timing]] = {t.name: [] for t in targets}
    for i in range(runs):
        # Rotate who goes first too, so that no target always follows the same one.
        for t in targets[i % len(targets):] + targets[:i % len(targets)]:
            out[t.name].append(fn(t.client, model, content))
    return out


def measure(targets: list[Target], args, model: str) -> None:
    content = f"{procs.QUESTION} [[tokens:{args.reply_tokens}]]"
    live = [t for t in targets if t.client is not None]
    round_robin(live, args.warmup, timed_stream, model, content)
    round_robin(live, args.warmup, timed_plain, model, content)

    # The gateways' CPU while nobody calls them (timers, background writers), to judge
    # how much of the CPU per request below is the requests' own.
    idle = {t.name: procs.cpu_seconds(t.pid) for t in live if t.pid}
    time.sleep(IDLE_SECONDS)
    for t in live:
        if t.pid:
            t.idle_ms_per_s = (procs.cpu_seconds(t.pid) - idle[t.name]) * 1000 / IDLE_SECONDS

    before = {t.name: procs.cpu_seconds(t.pid) for t in live if t.pid}
    started = time.monotonic()
    streamed = round_robin(live, args.runs, timed_stream, model, content)
    streamed_seconds = time.monotonic() - started
    after = {t.name: procs.cpu_seconds(t.pid) for t in live if t.pid}
    plain = round_robin(live, args.runs, timed_plain, model, content)
    for t in live:
        t.streamed, t.plain = streamed[t.name], plain[t.name]
        if t.pid:
            t.cpu_ms = (after[t.name] - before[t.name]) * 1000 / args.runs
            t.idle_share_ms = t.idle_ms_per_s * streamed_seconds / args.runs


def results(targets: list[Target]) -> dict:
    """The numbers the table shows, by metric: {"streamed TTFT p50": {"direct": ms, ...}}."""
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
            row["ib/litellm"] = (row["ib added"] / row["litellm added"]
                                 if row["litellm added"] and row["litellm added"] > 0 else None)
            rows[f"{label} p{p}"] = row
    rows["CPU per streamed request"] = {t.name: t.cpu_ms for t in targets}
    rows["CPU per streamed request"]["direct"] = None
    rows["  of which idle rate"] = {t.name: t.idle_share_ms for t in targets}
    rows["  of which idle rate"]["direct"] = None
    if direct.streamed is None:
        raise RuntimeError("no direct measurements")
    return rows


def _ms(v: float | None, absent: str = "—", sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return absent
    return f"{v:+.1f}ms" if sign else f"{v:.1f}ms"


def table(rows: dict, litellm_absent: str) -> str:
    head = (f"{'':26}{'direct':>10}{'via ib':>10}{'via LiteLLM':>15}"
            f"{'ib added':>11}{'LiteLLM added':>15}{'ib/LiteLLM':>12}")
    lines = [head]
    for label, row in rows.items():
        ratio = row.get("ib/litellm")
        lines.append(
            f"{label:26}{_ms(row.get('direct')):>10}{_ms(row.get('ib')):>10}"
            f"{_ms(row.get('litellm'), litellm_absent):>15}"
            f"{_ms(row.get('ib added'), '', True):>11}"
            f"{_ms(row.get('litellm added'), '', True):>15}"
            f"{'' if ratio is None else f'{ratio:.2f}':>12}")
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
    procs.add_output_args(ap)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.reply_tokens < 1:
        ap.error("--runs and --reply-tokens must be at least 1, --warmup at least 0")

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
            if use_litellm:
                proxy, proxy_url, key = procs.start_litellm(workdir, llm_url, model)
                running.append(proxy)
                targets[2] = Target("litellm", openai.OpenAI(
                    base_url=proxy_url, api_key=key, max_retries=0), proxy.pid)
            measure(targets, args, model)
            for t in targets:
                if t.client is not None:
                    t.client.close()
        finally:
            procs.stop(running)

    rows = results(targets)
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
    print(table(rows, litellm_absent))
    print("\nadded = the percentile via the gateway minus the same percentile direct; "
          "ib/LiteLLM = ib added / LiteLLM added.\nCPU = utime+stime of the gateway's "
          "process (and children) over the streamed block / its requests; of which idle "
          f"rate = its CPU rate over {IDLE_SECONDS:g} s with no request, times the block's "
          "duration / its requests\n(what it would have spent anyway).")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "reply_tokens": args.reply_tokens,
                                         "litellm": use_litellm, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
