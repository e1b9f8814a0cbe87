"""Many interviews at once: N concurrent streaming sessions through the ib service next
to the same load sent straight to the demo model, paced like a real provider.

    python benchmarks/concurrency.py [--n 10,50,100,200,500] [--window 15] [--warmup 3]
                                     [--latency 0.2] [--tokens-per-second 50]
                                     [--reply-tokens 50] [--litellm] [--relay]
                                     [--json FILE]

It starts the demo model, paced (first token after --latency s, then
--tokens-per-second), as a real process. For each N it runs the same client code twice
(once more each with --relay and --litellm): N streaming loops straight to the demo
model, then N sessions through a fresh `ib serve` (config: rate_limit_per_minute = 0,
the rest at the package's defaults, printed in the header). The sessions are made through the API
before anything is timed, each with its own candidate token. Every loop sends one
streamed chat after the other (`stream_options.include_usage`); after an error it waits
a second, like a client's backoff. The loops' starts are spread over one request's
ideal time (latency + reply at the pace), so that arrivals are spread out as people's
are, not N at one instant every cycle. The first --warmup seconds are not counted; then,
for --window seconds, it counts requests that start in the window (their time to first
token) and requests that end in it (requests/s), samples the gateway's RSS (VmRSS) and
reads CPU time (utime+stime) of the gateway (and of its threads but the main one), the
demo model and this client from /proc.
After the window no loop starts a request; those in flight finish.

Then it asks the service for every session (GET /ib/api/sessions/{id}, as the
interviewer) and compares what it charged (tokens_prompt + tokens_completion) with the
sum of the `usage` the client received in that session's streams: a session whose two
differ is mischarged.

The client is this one process: asyncio, one keep-alive HTTP/1.1 connection per loop
(a lean client of its own: httpx, reading events line by line, took a whole core at
N = 200 here), decoding only the first text chunk and the final usage chunk, so that it
is not the bottleneck; its own CPU % is printed so that one can tell. Sessions are made
and checked with httpx. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import procs


@dataclass
class Result:
    started: float  # monotonic
    ended: float
    first_token: float | None  # seconds after start
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Run:
    """One path at one N."""

    path: str
    n: int
    window: float
    results: list[list[Result]] = field(default_factory=list)  # per loop
    cpu: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    rss_peak_mb: float | None = None
    mischarged: int | None = None
    mischarged_examples: list[str] = field(default_factory=list)
    t0: float = 0.0  # window start (monotonic)

    def in_window(self, r: Result, at: float) -> bool:
        return self.t0 <= at < self.t0 + self.window

    def all(self) -> list[Result]:
        return [r for loop in self.results for r in loop]

    def ttfts(self) -> list[float]:
        return [r.first_token for r in self.all()
                if r.error is None and r.first_token is not None and self.in_window(r, r.started)]

    def rps(self) -> float:
        return sum(1 for r in self.all() if r.error is None and self.in_window(r, r.ended)) \
            / self.window

    def errors(self) -> collections.Counter:
        return collections.Counter(r.error for r in self.all() if r.error)


class Connection:
    """One loop's keep-alive HTTP/1.1 connection, for streamed chats only: a lean client
    (asyncio streams, chunked decoding, the events split once at the end) because a
    general one (httpx: h11 and an event per line) took a whole core at N = 200 here
    and became the bottleneck."""

    def __init__(self, url: str, key: str, body: bytes):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.request = (f"POST {parts.path}/chat/completions HTTP/1.1\r\n"
                        f"Host: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n"
                        "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def chat(self, timeout: float) -> Result:
        started = time.monotonic()
        try:
            return await asyncio.wait_for(self._chat(started), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            self.close()
            return Result(started, time.monotonic(), None, error=type(e).__name__)

    async def _chat(self, started: float) -> Result:
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(self.request)
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        status = int(head.split(b" ", 2)[1])
        headers = head.lower()
        keep = b"connection: close" not in headers
        if b"transfer-encoding: chunked" not in headers:  # an error with a plain body
            length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0]) \
                if b"content-length:" in headers else 0
            await self.reader.readexactly(length)
            if not keep or status == 200:
                self.close()
            return Result(started, time.monotonic(), None,
                          error=f"HTTP {status}" if status != 200 else "not streamed")
        first = None
        pieces: list[bytes] = []
        reader = self.reader
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            piece = (await reader.readexactly(size + 2))[:-2]
            pieces.append(piece)
            if first is None and b'"content"' in piece and _has_text(b"".join(pieces)):
                first = time.monotonic() - started
        ended = time.monotonic()
        if not keep:
            self.close()
        if status != 200:
            return Result(started, ended, None, error=f"HTTP {status}")
        data = [e[5:].strip() for e in b"".join(pieces).split(b"\n\n")
                if e.startswith(b"data:")]
        done = bool(data) and data[-1] == b"[DONE]"
        last = json.loads(data[-2] if done and len(data) > 1 else data[-1]) if data else {}
        if "error" in last:
            return Result(started, ended, first, error="error event")
        usage = last.get("usage") or {}
        result = Result(started, ended, first, usage.get("prompt_tokens", 0),
                        usage.get("completion_tokens", 0))
        if not done:
            result.error = "no [DONE]"
        elif not usage:
            result.error = "no usage"
        elif first is None:
            result.error = "no text"
        return result


def _has_text(events: bytes) -> bool:
    """Whether these server-sent events hold a chunk with text."""
    for event in events.split(b"\n\n"):
        event = event.strip()
        if event.startswith(b"data:") and event[5:].strip() != b"[DONE]":
            try:
                choices = json.loads(event[5:]).get("choices") or [{}]
            except ValueError:
                continue  # an event cut across chunks: the next call sees it whole
            if (choices[0].get("delta") or {}).get("content"):
                return True
    return False


async def chat_loop(conn: Connection, delay: float, stop_at: float, timeout: float,
                    out: list[Result]) -> None:
    await asyncio.sleep(delay)
    try:
        while time.monotonic() < stop_at:
            r = await conn.chat(timeout)
            out.append(r)
            if r.error:
                await asyncio.sleep(1.0)
    finally:
        conn.close()


async def sample(run: Run, pids: dict[str, int | None], gateway: str | None,
                 done: asyncio.Event, warmup: float) -> None:
    """CPU of each pid over the window (and of the gateway's side threads); the gateway's
    peak RSS over the window."""
    await asyncio.sleep(warmup)
    peak = 0
    # Not the client's children: the demo model and the service are its children.
    def now() -> dict[str, float]:
        cpu = {k: procs.cpu_seconds(p, tree=k != "client") for k, p in pids.items() if p}
        if gateway and pids.get(gateway):
            cpu[procs.SIDE_THREADS] = procs.side_thread_cpu_seconds(pids[gateway])
        return cpu

    before = now()
    began = time.monotonic()
    while time.monotonic() < run.t0 + run.window and not done.is_set():
        if gateway and pids.get(gateway):
            peak = max(peak, procs.rss_bytes(pids[gateway]))
        await asyncio.sleep(0.25)
    spent = time.monotonic() - began
    after = now()
    run.cpu = {k: (after[k] - before[k]) / spent * 100 for k in before}
    if gateway and pids.get(gateway):
        run.rss_peak_mb = peak / 1e6


async def load(run: Run, url: str, keys: list[str], model: str, args,
               pids: dict[str, int | None], gateway: str | None) -> None:
    body = json.dumps({"model": model, "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content":
                                     f"{procs.QUESTION} [[tokens:{args.reply_tokens}]]"}],
                       }).encode()
    start = time.monotonic()
    run.t0 = start + args.warmup
    stop_at = run.t0 + run.window
    run.results = [[] for _ in keys]
    done = asyncio.Event()
    sampler = asyncio.create_task(sample(run, pids, gateway, done, args.warmup))
    # Loop i starts i/N of one request's ideal time late: arrivals spread out as
    # people's do, not N at the same instant every cycle.
    cycle = 1 / ideal_rps(1, args)
    await asyncio.gather(*(chat_loop(Connection(url, key, body), i / len(keys) * cycle,
                                     stop_at, args.timeout, out)
                           for i, (key, out) in enumerate(zip(keys, run.results, strict=True))))
    done.set()
    await sampler


async def create_sessions(url: str, token: str, n: int) -> list[dict]:
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=60) as client:
        async def one(i):
            async with sem:
                r = await client.post(url + "/ib/api/sessions",
                                      headers={"Authorization": f"token {token}"},
                                      json={"candidate_name": f"Load {i}",
                                            "token_budget": 10_000_000,
                                            "time_limit_seconds": 24 * 3600,
                                            "challenge_text": "Benchmark the gateway."})
                if r.status_code != 201:
                    raise RuntimeError(f"creating a session: HTTP {r.status_code} {r.text}")
                return r.json()
        return await asyncio.gather(*(one(i) for i in range(n)))


async def check_charges(run: Run, url: str, token: str, sessions: list[dict]) -> None:
    """Compare each session's charge with the usage its client received."""
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=60,
                                 headers={"Authorization": f"token {token}"}) as client:
        async def view(sid: str) -> dict:
            async with sem:
                r = await client.get(f"{url}/ib/api/sessions/{sid}")
                r.raise_for_status()
                return r.json()

        ids = [s["id"] for s in sessions]
        deadline = time.monotonic() + 30
        while True:  # settlement may trail the stream's end a little
            views = await asyncio.gather(*(view(sid) for sid in ids))
            if all(v["tokens_reserved"] == 0 for v in views) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    run.mischarged = 0
    for v, results in zip(views, run.results, strict=True):
        received = sum(r.prompt_tokens + r.completion_tokens for r in results)
        charged = v["tokens_prompt"] + v["tokens_completion"]
        if charged != received or v["tokens_used"] != charged:
            run.mischarged += 1
            if len(run.mischarged_examples) < 3:
                errs = sum(1 for r in results if r.error)
                run.mischarged_examples.append(
                    f"{v['id']}: charged {charged} (used {v['tokens_used']}, reserved "
                    f"{v['tokens_reserved']}), received {received} in {len(results)} "
                    f"streams ({errs} with errors)")


class Phases:
    """How long each step took, for the progress lines."""

    def __init__(self):
        self.last = time.monotonic()
        self.steps: list[str] = []

    def done(self, what: str) -> None:
        now = time.monotonic()
        self.steps.append(f"{what} {now - self.last:.1f} s")
        self.last = now

    def __str__(self) -> str:
        return ", ".join(self.steps)


def ideal_rps(n: int, args) -> float:
    per_request = args.latency + (args.reply_tokens - 1) / args.tokens_per_second
    return n / per_request


def _ms(v: float, sign: bool = False) -> str:
    if math.isnan(v):
        return "—"  # no request started in the window and finished
    return f"{v:+.1f}ms" if sign else f"{v:.1f}ms"


def _percent(v: float | None) -> str:
    return "" if v is None else f"{v:.0f}%"


def _num(v: float) -> float | None:
    return None if math.isnan(v) else v


def report(runs: dict[int, dict[str, Run]], args) -> str:
    head = (f"{'N':>4} {'path':8}{'req/s':>8}{'ideal':>7}{'vs direct':>10}"
            f"{'TTFT p50':>11}{'p99':>11}{'added p50':>12}{'p99':>11}"
            f"{'gw CPU':>8}{'side':>6}{'gw RSS':>9}{'demo CPU':>9}{'client':>8}{'errors':>8}"
            f"{'mischarged':>12}")
    lines = [head]
    notes = []
    for n, paths in runs.items():
        direct = paths["direct"]
        d_ttft = direct.ttfts()
        for name, run in paths.items():
            t = run.ttfts()
            p50, p99 = procs.percentile(t, 50) * 1000, procs.percentile(t, 99) * 1000
            if name == "direct":
                added = ratio = ""
            else:
                a50 = p50 - procs.percentile(d_ttft, 50) * 1000
                a99 = p99 - procs.percentile(d_ttft, 99) * 1000
                added = f"{_ms(a50, True):>12}{_ms(a99, True):>11}"
                ratio = f"{run.rps() / direct.rps():.2f}x" if direct.rps() else "—"
            lines.append(
                f"{n:>4} {name:8}{run.rps():>8.1f}{ideal_rps(n, args):>7.0f}{ratio:>10}"
                f"{_ms(p50):>11}{_ms(p99):>11}{added or '':>23}"
                f"{_percent(run.cpu.get('gateway')):>8}"
                f"{_percent(run.cpu.get(procs.SIDE_THREADS)):>6}"
                f"{'' if run.rss_peak_mb is None else f'{run.rss_peak_mb:.0f}MB':>9}"
                f"{run.cpu.get('demo', 0):>8.0f}%{run.cpu.get('client', 0):>7.0f}%"
                f"{sum(run.errors().values()):>8}"
                f"{'' if run.mischarged is None else run.mischarged:>12}")
            for err, count in run.errors().most_common(3):
                notes.append(f"N={n} {name}: {count} x {err}")
            notes += [f"N={n} {name} mischarged: {m}" for m in run.mischarged_examples]
    return "\n".join(lines + ([""] + notes if notes else []))


def as_json(runs: dict[int, dict[str, Run]], args) -> dict:
    out = {}
    for n, paths in runs.items():
        d_ttft = paths["direct"].ttfts()
        out[n] = {}
        for name, run in paths.items():
            t = run.ttfts()
            out[n][name] = {
                "rps": run.rps(), "ideal_rps": ideal_rps(n, args),
                "rps_vs_direct": run.rps() / paths["direct"].rps() if paths["direct"].rps()
                else None,
                "ttft_p50_ms": _num(procs.percentile(t, 50) * 1000),
                "ttft_p99_ms": _num(procs.percentile(t, 99) * 1000),
                "added_ttft_p50_ms": _num(
                    (procs.percentile(t, 50) - procs.percentile(d_ttft, 50)) * 1000),
                "added_ttft_p99_ms": _num(
                    (procs.percentile(t, 99) - procs.percentile(d_ttft, 99)) * 1000),
                "requests": len(run.all()), "errors": sum(run.errors().values()),
                "error_kinds": dict(run.errors()), "cpu_percent": run.cpu,
                "rss_peak_mb": run.rss_peak_mb, "mischarged": run.mischarged,
            }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="10,50,100,200,500",
                    help="comma-separated numbers of concurrent sessions")
    ap.add_argument("--window", type=float, default=15.0, help="measured seconds per N and path")
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="uncounted seconds before it (the loops' starts are spread over the "
                         "first request's ideal time)")
    ap.add_argument("--latency", type=float, default=0.2,
                    help="the demo model's seconds before the first token")
    ap.add_argument("--tokens-per-second", type=float, default=50.0,
                    help="the demo model's streaming pace")
    ap.add_argument("--reply-tokens", type=int, default=50, help="length of each reply")
    ap.add_argument("--timeout", type=float, default=180.0, help="one request's longest time")
    ap.add_argument("--litellm", action="store_true",
                    help="also through a LiteLLM proxy (make bench's virtualenv)")
    ap.add_argument("--relay", action="store_true",
                    help="also through a bare relay (benchmarks/relay.py): the floor of a hop")
    procs.add_output_args(ap)
    args = ap.parse_args(argv)
    try:
        ns = [int(x) for x in args.n.split(",") if x.strip()]
    except ValueError:
        ap.error("--n takes numbers separated by commas")
    if not ns or min(ns) < 1 or args.window <= 0 or args.tokens_per_second <= 0:
        ap.error("--n must be at least 1, --window and --tokens-per-second above 0")
    if args.litellm and not procs.litellm_installed():
        print(f"LiteLLM: not installed ({procs.LITELLM_VENV}); left out.")
        args.litellm = False

    settings = procs.service_settings(procs.BENCH_CONFIG)
    print(f"{len(ns)} loads of N concurrent streaming sessions, {args.window:g} s measured "
          f"after {args.warmup:g} s; demo model: first token after {args.latency:g} s, "
          f"{args.tokens_per_second:g} tokens/s, replies of {args.reply_tokens} tokens "
          f"(ideal {ideal_rps(1, args):.2f} requests/s per session).")
    print("ib service: " + ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)

    load_before = procs.load_average()
    runs: dict[int, dict[str, Run]] = {}
    running = []
    me = os.getpid()
    began = time.monotonic()
    with procs.workdir(args.logs) as workdir:
        try:
            llm, llm_url = procs.start_demo_model(workdir, args.latency, args.tokens_per_second)
            running.append(llm)
            model = "gpt-4o-mini"  # the service's default model; the demo answers to any
            proxy = relay = None
            if args.relay:
                relay, relay_url = procs.start_relay(workdir, llm_url)
                running.append(relay)
            if args.litellm:
                proxy, proxy_url, proxy_key = procs.start_litellm(workdir, llm_url, model)
                running.append(proxy)
            for n in ns:
                phases = Phases()
                paths = runs[n] = {}
                run = paths["direct"] = Run("direct", n, args.window)
                asyncio.run(load(run, llm_url, ["bench"] * n, model, args,
                                 {"demo": llm.pid, "client": me}, None))
                phases.done("direct")
                token = procs.new_token()
                service, url = procs.start_service(workdir, llm_url, token)
                phases.done("service up")
                try:
                    sessions = asyncio.run(create_sessions(url, token, n))
                    phases.done(f"{n} sessions made")
                    model_ib = sessions[0]["session"]["model"]
                    run = paths["ib"] = Run("ib", n, args.window)
                    asyncio.run(load(run, url + "/ib/v1", [s["candidate_token"] for s in sessions],
                                     model_ib, args,
                                     {"gateway": service.pid, "demo": llm.pid, "client": me},
                                     "gateway"))
                    phases.done("ib")
                    asyncio.run(check_charges(run, url, token, sessions))
                    phases.done("charges checked")
                finally:
                    procs.stop([service])
                phases.done("service stopped")
                if relay is not None:
                    run = paths["relay"] = Run("relay", n, args.window)
                    asyncio.run(load(run, relay_url, ["bench"] * n, model, args,
                                     {"gateway": relay.pid, "demo": llm.pid, "client": me},
                                     "gateway"))
                    phases.done("relay")
                if proxy is not None:
                    run = paths["litellm"] = Run("litellm", n, args.window)
                    asyncio.run(load(run, proxy_url, [proxy_key] * n, model, args,
                                     {"gateway": proxy.pid, "demo": llm.pid, "client": me},
                                     "gateway"))
                    phases.done("litellm")
                print(f"N={n}: {phases}; {time.monotonic() - began:.0f} s so far", flush=True)
        finally:
            procs.stop(running)

    print(f"\nMachine load average: {load_before} before, {procs.load_average()} after.\n")
    print(report(runs, args))
    print("\nreq/s: requests that ended in the window without error / window; ideal: N / "
          "(latency + reply at the pace); vs direct: req/s / direct's at the same N.\n"
          "added: TTFT percentile minus direct's at the same N. CPU: % of one core over the "
          "window (gw: the gateway's process and children; side: of that, its threads "
          "but the main one,\nib's DuckDB and journal threads). RSS: the gateway's peak "
          "VmRSS. relay: a bare relay (benchmarks/relay.py), the floor of a Python hop.")
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "runs": as_json(runs, args)},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
