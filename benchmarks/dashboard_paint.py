"""Time to first paint of each interviewer dashboard after the service has started.

    python benchmarks/dashboard_paint.py [--runs 3]

Starts the offline demo model and `ib serve` (with the dashboards' Voilà settings) as real
processes, makes a few sessions (one finished, for analytics), then opens each dashboard
in headless Chromium (Debian's, via Playwright) and prints, per page:

- header: the first contentful paint (the template's header and loading bar);
- ready: the moment the page's widgets are on screen (`.ib-dash` visible).

"cold" is the first load of a page after the service started (fresh browser cache,
first kernel); "warm" the loads after it. "preheated" serves the same notebooks from a
standalone `voila --preheat_kernel=True` (Voilà's pool runs the notebook before anyone
asks), which the server-extension mode of `ib serve` cannot do. Not a test: nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
from procs import free_port, wait_up

REPO = Path(__file__).resolve().parent.parent
PAGES = ("monitor", "create", "analytics")
CHROMIUM = os.environ.get("IB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


def wait_for_line(log: Path, pattern: str, proc: subprocess.Popen, count: int,
                  within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"voila exited with {proc.returncode}; see {log}")
        if len(re.findall(pattern, log.read_text(errors="replace"))) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"voila's kernel pools did not fill within {within:.0f} s; see {log}")


def start(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def seed(url: str, token: str) -> None:
    """Two live sessions and one finished, so every page has something to draw."""
    from ib_extension.api.client import IBClient

    client = IBClient(url, token)
    for name, finish in (("Ada Lovelace", True), ("Grace Hopper", False), ("Alan Turing", False)):
        s = client.create_session(candidate_name=name, time_limit_seconds=1800,
                                  token_budget=20_000, challenge_title="FizzBuzz",
                                  challenge_text="Write `fizzbuzz(n)`.")
        openai.OpenAI(base_url=url + "/ib/v1", api_key=s["candidate_token"],
                      max_retries=0).chat.completions.create(
            model=s["session"]["model"], messages=[{"role": "user", "content": "hi [[tokens:40]]"}])
        if finish:
            client.action(s["id"], "end")
    client.close()


def measure(context, url: str) -> tuple[float, float]:
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(".ib-dash", state="visible", timeout=60_000)
    ready = time.perf_counter() - t0
    fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || "
                        "{startTime: NaN}).startTime") / 1000
    page.close()
    return fcp, ready


def run_pages(base: str, query: str, runs: int, label: str, profile: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        for name in PAGES:
            context = p.chromium.launch_persistent_context(
                str(profile / f"{label}-{name}"), executable_path=CHROMIUM, headless=True,
                args=ARGS, viewport={"width": 1400, "height": 900})
            url = f"{base}/voila/render/{name}.ipynb{query}"
            try:
                timings = [measure(context, url) for _ in range(runs + 1)]
            except PlaywrightTimeout:
                print(f"{label:<10} {name:<10} did not show its widgets within 60 s "
                      "(is the machine busy?)", flush=True)
                continue
            finally:
                context.close()
            (fcp0, ready0), warm = timings[0], timings[1:]
            print(f"{label:<10} {name:<10} first load: header {fcp0 * 1000:6.0f} ms, "
                  f"ready {ready0 * 1000:6.0f} ms | then median of {runs}: header "
                  f"{statistics.median(t[0] for t in warm) * 1000:6.0f} ms, ready "
                  f"{statistics.median(t[1] for t in warm) * 1000:6.0f} ms", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="loads after the first, per page")
    args = parser.parse_args()
    from ib_extension.dashboards import voila_settings

    procs: list[subprocess.Popen] = []
    work = Path(tempfile.mkdtemp(prefix="ib-paint-"))
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
    env["IB_TOKEN"] = token
    try:
        llm_port, port = free_port(), free_port()
        procs.append(start([sys.executable, "-m", "ib_extension.cli.fake_llm", "--port",
                            str(llm_port)], work / "llm.log"))
        wait_up(f"http://127.0.0.1:{llm_port}/v1/models", procs[-1])
        config = work / "voila_config.py"
        config.write_text(voila_settings.config_text())
        started = time.perf_counter()
        procs.append(start([sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port),
                            "--data-dir", str(work / "data"), "--llm-base-url",
                            f"http://127.0.0.1:{llm_port}/v1", "--config", str(config)],
                           work / "service.log", env))
        url = f"http://127.0.0.1:{port}"
        wait_up(url + "/ib/api/health", procs[-1])
        print(f"ib serve answered after {time.perf_counter() - started:.1f} s", flush=True)
        seed(url, token)
        run_pages(url, f"?token={token}", args.runs, "ib serve", work)

        # The same notebooks from a standalone Voilà with preheated kernels.
        vport = free_port()
        log = work / "voila.log"
        venv = dict(env, IB_URL=url)
        procs.append(start([sys.executable, "-m", "voila", str(REPO / "notebooks"),
                            "--no-browser", f"--port={vport}", "--Voila.ip=127.0.0.1",
                            "--preheat_kernel=True", "--pool_size=1",
                            f"--template={voila_settings.TEMPLATE}",
                            "--VoilaKernelManager.preheat_denylist=['candidate.ipynb']",
                            "--ServerApp.allow_root=True" if os.geteuid() == 0 else ""],
                           log, venv))
        wait_up(f"http://127.0.0.1:{vport}/voila/render/monitor.ipynb", procs[-1])
        wait_for_line(log, "Kernel pool of .* is filled", procs[-1], len(PAGES))
        run_pages(f"http://127.0.0.1:{vport}", "", args.runs, "preheated", work)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
