"""How a flood of refused chat requests slows the interviewer's session list, against a
baseline measured in the same run.

    python benchmarks/refusal_flood.py [--sessions 200] [--flood 3000] [--workers 32]

It starts the demo model and `ib serve` (rate limit 20 a minute) as real processes, makes
`--sessions` sessions, then times `GET /ib/api/sessions` (plain, and `q=` which searches
the stored conversations) with no load (the baseline), while one candidate sends `--flood`
chat requests that are refused as rate-limited, and right after the flood. It prints
p50/p95 of each and the ratio to the baseline, the refusals per second the service
answered, and how many refusal events it stored. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
from procs import percentile, start_demo_model, start_service, stop

LIST_PATHS = {"list": "/ib/api/sessions?limit=50", "search": "/ib/api/sessions?limit=50&q=fizz"}


async def time_lists(c: httpx.AsyncClient, samples: int, stop: asyncio.Event | None = None,
                     ) -> dict[str, list[float]]:
    """Latencies of the list and search calls, `samples` each (or until `stop`)."""
    out: dict[str, list[float]] = {k: [] for k in LIST_PATHS}
    for _ in range(samples):
        for name, path in LIST_PATHS.items():
            started = time.perf_counter()
            r = await c.get(path)
            r.raise_for_status()
            out[name].append(time.perf_counter() - started)
        if stop is not None and stop.is_set():
            break
        await asyncio.sleep(0.02)  # a dashboard polls; it does not hammer
    return out


async def flood(url: str, token: str, total: int, workers: int) -> tuple[int, float]:
    """Send `total` chat requests from `workers` at once; return (refused, seconds)."""
    refused = 0
    queue = iter(range(total))
    headers = {"Authorization": f"Bearer {token}"}
    body = {"messages": [{"role": "user", "content": "again [[tokens:5]]"}]}

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal refused
        for _ in queue:
            r = await c.post("/ib/v1/chat/completions", json=body, headers=headers)
            refused += r.status_code == 429

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        await asyncio.gather(*(worker(c) for _ in range(workers)))
    return refused, time.perf_counter() - started


async def run(url: str, token: str, args) -> None:
    interviewer = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=url, headers=interviewer, timeout=120) as c:
        made = []
        for i in range(args.sessions):
            r = await c.post("/ib/api/sessions", json={
                "candidate_name": f"Candidate {i}", "token_budget": 100_000,
                "time_limit_seconds": 3600, "challenge_text": "Write fizzbuzz(n)."})
            r.raise_for_status()
            made.append(r.json())
        flooder = made[0]
        baseline = await time_lists(c, args.samples)
        stop = asyncio.Event()
        flooding = asyncio.ensure_future(flood(url, flooder["candidate_token"], args.flood,
                                               args.workers))
        flooding.add_done_callback(lambda _: stop.set())
        during = await time_lists(c, 10**9, stop)
        refused, seconds = await flooding
        after = await time_lists(c, args.samples)
        events = (await c.get(f"/ib/api/sessions/{flooder['id']}/events",
                              params={"type": "refusal"})).json()["events"]

    print(f"{args.sessions} sessions; one candidate sent {args.flood} chat requests from "
          f"{args.workers} connections: {refused} refused in {seconds:.1f} s "
          f"({refused / seconds:.0f}/s); refusal events stored: {len(events)}.\n")
    print(f"{'GET /ib/api/sessions':28}{'p50':>10}{'p95':>10}{'p50 ratio':>11}{'samples':>9}")
    for name in LIST_PATHS:
        base50 = percentile(baseline[name], 50)
        for label, series in (("baseline", baseline), ("during flood", during),
                              ("right after", after)):
            p50, p95 = percentile(series[name], 50), percentile(series[name], 95)
            print(f"{name + ' ' + label:28}{p50 * 1000:>8.1f}ms{p95 * 1000:>8.1f}ms"
                  f"{p50 / base50:>10.2f}x{len(series[name]):>9}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200, help="sessions in the list")
    ap.add_argument("--flood", type=int, default=3000, help="refused requests to send")
    ap.add_argument("--workers", type=int, default=32, help="concurrent flooding connections")
    ap.add_argument("--samples", type=int, default=30, help="list calls for each baseline")
    args = ap.parse_args(argv)
    if min(args.sessions, args.flood, args.workers, args.samples) < 1:
        ap.error("every count must be at least 1")
    running = []
    with tempfile.TemporaryDirectory(prefix="ib-bench-") as tmp:
        workdir = Path(tmp)
        try:
            llm, llm_url = start_demo_model(workdir, 0.0, 0.0)
            running.append(llm)
            token = secrets.token_hex(16)
            service, url = start_service(workdir, llm_url, token,
                                         {"rate_limit_per_minute": 20})
            running.append(service)
            asyncio.run(run(url, token, args))
        finally:
            stop(running)
    return 0


if __name__ == "__main__":
    sys.exit(main())
