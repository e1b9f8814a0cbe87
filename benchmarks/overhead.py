"""What the ib service adds to a streamed chat: time to first token and total latency
through the service vs straight to the same offline demo model, in the same run.

    python benchmarks/overhead.py [--runs 40] [--warmup 5] [--reply-tokens 200]
                                  [--latency 0] [--tokens-per-second 0]

It starts the demo model and `ib serve` (with the per-session rate limit off) as real
processes on free loopback ports, makes one session, then alternates direct and
through-the-service requests with the official `openai` SDK, and prints p50/p95 of
both, the milliseconds the service adds and the ratio. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

QUESTION = "How do I sort a list of tuples by the second item?"


@dataclass
class Timing:
    first_token: float  # seconds from sending the request to the first text delta
    total: float  # seconds from sending the request to the end of the stream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, within: float = 60.0, **kw) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[2:4]} exited with {proc.returncode} before {url} came up")
        try:
            httpx.get(url, timeout=2, **kw)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {within:.0f} s")


def start_demo_model(workdir: Path, latency: float, tps: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ib_extension.cli.fake_llm", "--port", str(port),
         "--latency", str(latency), "--tokens-per-second", str(tps)],
        stdout=open(workdir / "fake-llm.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}/v1"
    wait_up(url + "/models", proc, headers={"Authorization": "Bearer bench"})
    return proc, url


def start_service(workdir: Path, llm_url: str, token: str,
                  config_text: str = "c.IBExtension.rate_limit_per_minute = 0\n",
                  ) -> tuple[subprocess.Popen, str]:
    # By default one session makes every request: the per-session rate limit would refuse most.
    config = workdir / "bench_config.py"
    config.write_text(config_text)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
    env["IB_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port),
         "--data-dir", str(workdir / "data"), "--llm-base-url", llm_url,
         "--config", str(config)],
        env=env, stdout=open(workdir / "service.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/ib/api/health", proc)
    return proc, url


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


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report(direct: list[Timing], service: list[Timing]) -> str:
    lines = [f"{'':24}{'direct':>11}{'via ib':>11}{'added':>11}{'ratio':>8}"]
    for label, attr in (("time to first token", "first_token"), ("total latency", "total")):
        for p in (50, 95):
            d = percentile([getattr(t, attr) for t in direct], p) * 1000
            s = percentile([getattr(t, attr) for t in service], p) * 1000
            lines.append(f"{label + f' p{p}':24}{d:>9.1f}ms{s:>9.1f}ms{s - d:>+9.1f}ms"
                         f"{s / d:>7.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40, help="measured requests per path")
    ap.add_argument("--warmup", type=int, default=5, help="unmeasured requests per path first")
    ap.add_argument("--reply-tokens", type=int, default=200, help="length of each reply")
    ap.add_argument("--latency", type=float, default=0.0,
                    help="the demo model's seconds before the first token")
    ap.add_argument("--tokens-per-second", type=float, default=0.0,
                    help="the demo model's streaming pace (0 = as fast as it can)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.reply_tokens < 1:
        ap.error("--runs and --reply-tokens must be at least 1, --warmup at least 0")

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="ib-bench-") as tmp:
        workdir = Path(tmp)
        try:
            llm, llm_url = start_demo_model(workdir, args.latency, args.tokens_per_second)
            procs.append(llm)
            token = secrets.token_hex(16)
            service, url = start_service(workdir, llm_url, token)
            procs.append(service)
            created = httpx.post(url + "/ib/api/sessions", timeout=30,
                                 headers={"Authorization": f"token {token}"},
                                 json={"candidate_name": "Benchmark", "token_budget": 10_000_000,
                                       "time_limit_seconds": 24 * 3600,
                                       "challenge_text": "Benchmark the gateway."})
            created.raise_for_status()
            session = created.json()
            model = session["session"]["model"]  # the same name on both paths
            direct = openai.OpenAI(base_url=llm_url, api_key="bench", max_retries=0)
            via_ib = openai.OpenAI(base_url=url + "/ib/v1", api_key=session["candidate_token"],
                                   max_retries=0)
            content = f"{QUESTION} [[tokens:{args.reply_tokens}]]"

            for _ in range(args.warmup):
                timed_stream(direct, model, content)
                timed_stream(via_ib, model, content)
            times: dict[str, list[Timing]] = {"direct": [], "service": []}
            for _ in range(args.runs):  # alternate, so drift hits both paths alike
                times["direct"].append(timed_stream(direct, model, content))
                times["service"].append(timed_stream(via_ib, model, content))
            direct.close()
            via_ib.close()
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait(15)

    pace = (f"{args.tokens_per_second:g} tokens/s" if args.tokens_per_second
            else "as fast as it can")
    print(f"Streamed chat, {args.runs} runs per path after {args.warmup} warm-up, replies of "
          f"{args.reply_tokens} tokens; demo model: first token after {args.latency:g} s, "
          f"then {pace}.\n")
    print(report(times["direct"], times["service"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
