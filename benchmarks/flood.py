"""What one hostile candidate's flood does to the service: resident memory before and
after, the database's size, and the size of one interviewer feed poll.

    python benchmarks/flood.py [--posts 120] [--post-mb 5] [--anonymous 20]

It starts the demo model and `ib serve` (default settings: quotas, body limits) as
real processes, makes two sessions, then with the first one's candidate token posts
`--posts` activity events of `--post-mb` MB each (what issue 9 measured: 120 posts of
5 MB took the service to 2.4 GB), plus `--anonymous` requests announcing 100 MB
bodies with no token. It prints the service's RSS before and after (and the ratio),
the DuckDB file's size, one feed poll's size, and whether the other session still
answers. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from procs import free_port, wait_up


def start(workdir: Path) -> tuple[list[subprocess.Popen], str, str]:
    llm_port, port, token = free_port(), free_port(), "flood-bench-interviewer"
    llm = subprocess.Popen([sys.executable, "-m", "ib_extension.cli.fake_llm", "--port",
                            str(llm_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{llm_port}/v1/models", llm, headers={"Authorization": "Bearer x"})
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
    env["IB_TOKEN"] = token
    log = open(workdir / "service.log", "w")  # noqa: SIM115 (kept for the process's life)
    service = subprocess.Popen(
        [sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port), "--data-dir",
         str(workdir / "data"), "--llm-base-url", f"http://127.0.0.1:{llm_port}/v1"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/ib/api/health", service)
    return [service, llm], url, token


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


async def announce_100_mb(url: str) -> str:
    u = httpx.URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    writer.write(b"POST /ib/api/me/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
                 + b"x" * 65536)
    await writer.drain()
    status = (await asyncio.wait_for(reader.readline(), 30)).decode().split(" ")[1]
    writer.close()
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=120)
    parser.add_argument("--post-mb", type=float, default=5)
    parser.add_argument("--anonymous", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ib-flood-") as folder:
        procs, url, token = start(Path(folder))
        service = psutil.Process(procs[0].pid)
        try:
            run(url, token, service, Path(folder), args)
        finally:
            for p in procs:
                p.terminate()
                p.wait(15)


def run(url: str, token: str, service: psutil.Process, folder: Path, args) -> None:
    admin = httpx.Client(base_url=url, headers={"Authorization": f"token {token}"}, timeout=120)
    body = {"time_limit_seconds": 3600, "token_budget": 5000, "challenge_text": "Flood."}
    flooder = admin.post("/ib/api/sessions", json={**body, "candidate_name": "Flooder"}).json()
    other = admin.post("/ib/api/sessions", json={**body, "candidate_name": "Other"}).json()
    start = admin.get("/ib/api/feed").json()
    candidate = httpx.Client(base_url=url, timeout=120, headers={
        "Authorization": f"Bearer {flooder['candidate_token']}"})
    # Warm the paths once, so "before" is a service that has served these routes.
    candidate.post("/ib/api/me/events", json={"type": "activity.copy", "payload": {}})
    rss_before = service.memory_info().rss

    # Random text: it neither compresses in the file nor shares memory between posts.
    text = secrets.token_hex(int(args.post_mb * 1e6 - 200) // 2)  # the body stays under the limit
    statuses: dict[int, int] = {}
    peak = rss_before
    rss_at_quota = None
    started = time.monotonic()
    for i in range(args.posts):
        r = candidate.post("/ib/api/me/events", json={
            "type": "activity.snapshot", "payload": {"path": f"n{i}.ipynb", "text": text}})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        peak = max(peak, service.memory_info().rss)
        if r.status_code == 429 and rss_at_quota is None:
            rss_at_quota = service.memory_info().rss
    anon = [asyncio.run(announce_100_mb(url)) for _ in range(args.anonymous)]
    flood_seconds = time.monotonic() - started
    peak = max(peak, service.memory_info().rss)
    poll = admin.get("/ib/api/feed", params={"cursor": start["cursor"], "epoch": start["epoch"],
                                             "timeout": 0})
    other_ok = httpx.post(f"{url}/ib/api/me/events", timeout=30, json={
        "type": "activity.copy", "payload": {}},
        headers={"Authorization": f"Bearer {other['candidate_token']}"}).status_code
    rss_after = service.memory_info().rss
    db = sum(p.stat().st_size for p in (folder / "data").glob("ib.duckdb*"))

    print(f"flood: {args.posts} posts of {args.post_mb:g} MB by one candidate "
          f"({dict(sorted(statuses.items()))} by status), {args.anonymous} anonymous "
          f"100 MB announcements ({sorted(set(anon))}), in {flood_seconds:.1f} s")
    print(f"service RSS before      {mb(rss_before)}")
    print(f"service RSS at quota    {mb(rss_at_quota or 0)}   (when the first post was refused)")
    print(f"service RSS peak        {mb(peak)}")
    print(f"service RSS after       {mb(rss_after)}   after/before {rss_after / rss_before:.2f}x")
    print(f"DuckDB file             {mb(db)}")
    print(f"one feed poll           {mb(len(poll.content))}   ({len(poll.json()['items'])} items)")
    print(f"other session's event   HTTP {other_ok}")


if __name__ == "__main__":
    main()
