"""What a burst of session creations does to a candidate's chat and the interviewer's
reads, and how long stopping the service takes right after a bigger burst.

    python benchmarks/burst.py [--sessions 1000] [--total 9900] [--connections 16]
                               [--probes 20] [--warmup 3] [--reply-tokens 20]
                               [--json FILE] [--logs DIR]

It starts the demo model (unpaced) and `ib serve` as real processes and makes two probe
sessions: one to chat in, one with a 10-message conversation to read. A probe round runs
three probes at once, one thread each: the candidate's streamed chat (time to first
token, official `openai` SDK), the interviewer's session list (GET /ib/api/sessions)
and the second session's messages (GET /ib/api/sessions/{id}/messages). Rounds run:

  quiet    --probes rounds on the idle service (after --warmup unmeasured ones);
  during   one round after another while --sessions creations arrive over
           --connections keep-alive connections (from another process, so that the
           client's own work does not slow the probes);
  after    --probes rounds, the first started the moment the last creation was answered;
  settled  --probes rounds once the journal's mover has caught up: the same data without
           the burst, to tell the burst's delay from the cost of more sessions.

Then a second burst brings the creations to --total in all (issue 14's 9,900), and the
moment its last creation is answered the service gets SIGTERM: the seconds to its exit,
then a restart on the same data folder and a count of the sessions it lists (lost: the
created ones it does not). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path

import httpx
import openai
import procs
from overhead import Asking, timed_stream

KINDS = ("chat TTFT", "session list", "messages")
PHASES = ("quiet", "during", "after", "settled")
SETTLE_SECONDS = 3.0  # six of the mover's 0.5 s batches
READ_CHATS = 5  # the read session's conversation: 10 messages


# ---- the burst (in a child process) ---------------------------------------------------
def create_burst(url: str, token: str, n: int, connections: int, name: str) -> dict:
    """Create `n` sessions as fast as the service takes them over `connections`
    connections; the ids, the statuses and when it started and ended (time.monotonic,
    the same clock in every process)."""
    return asyncio.run(_create_burst(url, token, n, connections, name))


async def _create_burst(url: str, token: str, n: int, connections: int, name: str) -> dict:
    ids: list[str] = []
    statuses: collections.Counter = collections.Counter()
    todo = iter(range(n))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits,
                                 headers={"Authorization": f"token {token}"}) as client:
        async def worker() -> None:
            for i in todo:  # one shared iterator: each creation is sent once
                r = await client.post("/ib/api/sessions", json={
                    "candidate_name": f"{name} {i}", "token_budget": 10_000_000,
                    "time_limit_seconds": 24 * 3600, "challenge_text": "A burst."})
                statuses[r.status_code] += 1
                if r.status_code == 201:
                    ids.append(r.json()["id"])

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        ended = time.monotonic()
    return {"ids": ids, "statuses": dict(statuses), "started": started, "ended": ended}


def no_op() -> None:
    """Submitted once so that the child process is up before anything is timed."""


# ---- the probes ---------------------------------------------------------------------
class Prober:
    """The three probes with clients of their own, run at once in three threads."""

    def __init__(self, url: str, token: str, chat: dict, read: dict, model: str,
                 reply_tokens: int):
        self.chat = openai.OpenAI(base_url=url + "/ib/v1", api_key=chat["candidate_token"],
                                  max_retries=0, timeout=300)
        self.model = model
        self.messages = Asking(reply_tokens).next()
        self.reads = [httpx.Client(base_url=url, timeout=300,
                                   headers={"Authorization": f"token {token}"})
                      for _ in range(2)]
        self.messages_path = f"/ib/api/sessions/{read['id']}/messages"
        self.pool = ThreadPoolExecutor(len(KINDS))

    def ttft(self) -> float:
        return timed_stream(self.chat, self.model, self.messages).first_token

    @staticmethod
    def get(client: httpx.Client, path: str) -> float:
        started = time.perf_counter()
        client.get(path).raise_for_status()
        return time.perf_counter() - started

    def round(self) -> tuple[float, dict[str, float]]:
        """When the round started (monotonic) and each probe's seconds."""
        started = time.monotonic()
        futures = dict(zip(KINDS, (
            self.pool.submit(self.ttft),
            self.pool.submit(self.get, self.reads[0], "/ib/api/sessions"),
            self.pool.submit(self.get, self.reads[1], self.messages_path)), strict=True))
        return started, {k: f.result() for k, f in futures.items()}

    def close(self) -> None:
        self.pool.shutdown()
        self.chat.close()
        for c in self.reads:
            c.close()


def rounds(prober: Prober, n: int, into: dict[str, list[float]]) -> list[float]:
    """`n` rounds into `into` (kind -> seconds); when each started."""
    starts = []
    for _ in range(n):
        at, took = prober.round()
        starts.append(at)
        for k, v in took.items():
            into[k].append(v)
    return starts


def during_burst(prober: Prober, burst, into: dict[str, list[float]]) -> dict:
    """Rounds one after another until `burst` (a Future) is done; its result. A round
    still running when the burst ends is counted if it started before the last answer."""
    started: list[tuple[float, dict]] = []
    while not burst.done():
        started.append(prober.round())
    result = burst.result()
    for at, took in started:
        if at < result["ended"]:
            for k, v in took.items():
                into[k].append(v)
    return result


# ---- the stop -----------------------------------------------------------------------
def journal_rows(data: Path) -> int:
    """Rows in the service's journal: acknowledged, not yet moved into DuckDB."""
    rows = 0
    for segment in (data / "ib.duckdb.journal").glob("*.jsonl"):
        try:
            with open(segment, "rb") as f:
                rows += sum(1 for _ in f)
        except FileNotFoundError:  # moved and deleted meanwhile
            pass
    return rows


def listed_ids(url: str, token: str) -> set[str]:
    """Every session the service lists, page by page."""
    found: set[str] = set()
    with httpx.Client(base_url=url, timeout=300,
                      headers={"Authorization": f"token {token}"}) as client:
        while True:
            page = client.get("/ib/api/sessions",
                              params={"limit": 500, "offset": len(found)}).json()
            found.update(s["id"] for s in page["sessions"])
            if not page["sessions"] or len(found) >= page["total"]:
                return found


# ---- report -------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "" if v is None or math.isnan(v) else f"{v * 1000:.1f}ms"


def _x(v: float | None, base: float) -> str:
    return "" if v is None or math.isnan(v) or not base else f"{v / base:.2f}x"


def table(samples: dict[str, dict[str, list[float]]]) -> str:
    lines = [f"{'probe':14}{'phase':9}{'n':>5}{'p50':>11}{'p99':>11}{'first':>11}"
             f"{'p50/quiet':>11}{'p99/quiet':>11}{'first/quiet':>13}"]
    for kind in KINDS:
        quiet50 = procs.percentile(samples["quiet"][kind], 50)
        quiet99 = procs.percentile(samples["quiet"][kind], 99)
        for phase in PHASES:
            got = samples[phase][kind]
            p50, p99 = procs.percentile(got, 50), procs.percentile(got, 99)
            first = got[0] if phase == "after" and got else None
            ratios = ("", "", "") if phase == "quiet" else (
                _x(p50, quiet50), _x(p99, quiet99), _x(first, quiet50))
            lines.append(f"{kind if phase == 'quiet' else '':14}{phase:9}{len(got):>5}"
                         f"{_ms(p50):>11}{_ms(p99):>11}{_ms(first):>11}"
                         f"{ratios[0]:>11}{ratios[1]:>11}{ratios[2]:>13}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000, help="creations in the probed burst")
    ap.add_argument("--total", type=int, default=9900,
                    help="creations in all when the service is stopped (issue 14's 9,900)")
    ap.add_argument("--connections", type=int, default=16, help="the bursts' connections")
    ap.add_argument("--probes", type=int, default=20, help="probe rounds per phase")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured probe rounds first")
    ap.add_argument("--reply-tokens", type=int, default=20, help="length of the chat's reply")
    ap.add_argument("--stop-timeout", type=float, default=600,
                    help="seconds to wait for the stopped service before killing it")
    procs.add_output_args(ap)
    args = ap.parse_args(argv)
    if min(args.sessions, args.connections, args.probes, args.reply_tokens) < 1:
        ap.error("--sessions, --connections, --probes and --reply-tokens must be at least 1")

    load_before = procs.load_average()
    samples = {p: {k: [] for k in KINDS} for p in PHASES}
    running = []
    # spawn, not fork: the child starts clean, without this process's threads and sockets.
    bursts = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    with procs.workdir(args.logs) as workdir:
        try:
            llm, llm_url = procs.start_demo_model(workdir)
            running.append(llm)
            token = procs.new_token()
            service, url = procs.start_service(workdir, llm_url, token)
            running.append(service)
            with httpx.Client() as http:
                chat, read = (procs.create_session(http, url, token, f"Probe {i}")
                              for i in range(2))
            model = chat["session"]["model"]
            prober = Prober(url, token, chat, read, model, args.reply_tokens)
            reader = openai.OpenAI(base_url=url + "/ib/v1", api_key=read["candidate_token"],
                                   max_retries=0)
            for _ in range(READ_CHATS):
                timed_stream(reader, model, prober.messages)
            reader.close()
            bursts.submit(no_op).result()

            rounds(prober, args.warmup, {k: [] for k in KINDS})
            rounds(prober, args.probes, samples["quiet"])

            cpu = procs.cpu_seconds(service.pid)
            burst = bursts.submit(create_burst, url, token, args.sessions, args.connections,
                                  "Burst")
            # The during rounds have their own clients and threads, so that the after
            # rounds start the moment the burst ends, not when a slow round does.
            during = Prober(url, token, chat, read, model, args.reply_tokens)
            with ThreadPoolExecutor(1) as side:
                first = side.submit(during_burst, during, burst, samples["during"])
                wait([burst])
                after_starts = rounds(prober, args.probes, samples["after"])
                small = first.result()
            during.close()
            burst_cpu = procs.cpu_seconds(service.pid) - cpu
            time.sleep(SETTLE_SECONDS)
            rounds(prober, args.probes, samples["settled"])
            prober.close()

            made = 2 + len(small["ids"])
            big = bursts.submit(create_burst, url, token, max(0, args.total - made),
                                args.connections, "Big").result()
            backlog = journal_rows(service.data_dir)
            signalled = time.monotonic()
            service.terminate()
            try:
                service.wait(args.stop_timeout)
                stop_seconds, stop_how = time.monotonic() - signalled, f"exit {service.returncode}"
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
                stop_seconds, stop_how = time.monotonic() - signalled, "killed"
            running.remove(service)

            restarted = time.monotonic()
            again, again_url = procs.start_service(workdir, llm_url, token,
                                                   data=service.data_dir)
            running.append(again)
            restart_seconds = time.monotonic() - restarted
            created = {chat["id"], read["id"], *small["ids"], *big["ids"]}
            found = listed_ids(again_url, token)
        finally:
            procs.stop(running)
            bursts.shutdown()
    lost = len(created - found)

    def rate(b: dict) -> str:
        took = b["ended"] - b["started"]
        n = sum(b["statuses"].values())
        return (f"{n} creations over {args.connections} connections in {took:.2f} s "
                f"({n / max(took, 1e-9):.0f}/s; HTTP status: count {b['statuses']})")

    print(f"Burst: {rate(small)}; the service's CPU meanwhile {burst_cpu:.1f} s.")
    print(f"Probe rounds (chat, list and messages at once): {args.probes} per phase; "
          f"during the burst {len(samples['during']['messages'])}; the first after it "
          f"started {(after_starts[0] - small['ended']) * 1000:.1f} ms after the last "
          f"creation was answered; settled = after a {SETTLE_SECONDS:g} s pause.")
    print(f"Machine load average: {load_before} before, {procs.load_average()} after.\n")
    print(table(samples))
    print(f"\nStop: {rate(big)}, bringing the total to {made + len(big['ids'])}; at SIGTERM "
          f"{backlog} rows were in the journal, not yet in DuckDB; the service stopped "
          f"after {stop_seconds:.2f} s ({stop_how}).")
    print(f"Restart on the same data: /health after {restart_seconds:.2f} s; "
          f"{len(found)} sessions listed, {len(created)} created; lost: {lost}")
    if args.json:
        args.json.write_text(json.dumps({
            "sessions": args.sessions, "samples_s": samples,
            "burst": {k: v for k, v in small.items() if k != "ids"},
            "burst_cpu_s": burst_cpu, "first_after_s": after_starts[0] - small["ended"],
            "big_burst": {k: v for k, v in big.items() if k != "ids"},
            "journal_rows_at_stop": backlog, "stop_s": stop_seconds, "stop": stop_how,
            "restart_s": restart_seconds, "created": len(created), "listed": len(found),
            "lost": lost}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
