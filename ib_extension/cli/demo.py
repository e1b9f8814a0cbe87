"""`ib demo`: everything on one machine — the offline demo model (unless an API key is
set), the ib service, one demo session and its candidate workspace — then print what to
open. Ctrl-C stops it all.

Both servers run as the same OS user here, for convenience. A tamper-proof setup runs the
candidate's server as another user, in a container, or on JupyterHub (see README).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..api.client import IBClient
from ..api.environment import SECRET_ENV


def add_demo_parser(sub) -> None:
    d = sub.add_parser("demo", help="start the demo model, the service, a session and its "
                                    "candidate workspace; print what to open")
    d.add_argument("--port", type=int, default=8890, help="the service's port")
    d.add_argument("--lab-port", type=int, default=8891, help="the candidate workspace's port")
    d.add_argument("--llm-port", type=int, default=8892, help="the demo model's port")
    d.add_argument("--data-dir", default=".ib-demo")
    d.add_argument("--no-lab", action="store_true", help="do not start a candidate workspace")
    d.set_defaults(func=cmd_demo)


def _wait_up(url: str, proc: subprocess.Popen, what: str, within: float = 120.0,
             headers: dict | None = None) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited (code {proc.returncode}); see the messages above.")
        try:
            httpx.get(url, timeout=2, headers=headers)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start within {within:.0f} s.")


def cmd_demo(args) -> int:
    procs: list[subprocess.Popen] = []
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    ib = [sys.executable, "-m", "ib_extension.cli"]
    env = dict(os.environ)
    token = env.get("IB_TOKEN") or secrets.token_hex(24)
    env["IB_TOKEN"] = token
    real_key = any(env.get(k) for k in SECRET_ENV)

    def stop_all(*_: object) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    # A SIGTERM at any point (process managers, `timeout`) must still stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve = ib + ["serve", "--port", str(args.port), "--data-dir", str(data / "service")]
        if real_key:
            print("Using the real LLM provider (an API key is set).")
        else:
            llm = subprocess.Popen(ib + ["fake-llm", "--port", str(args.llm_port)], env=env)
            procs.append(llm)
            base = f"http://127.0.0.1:{args.llm_port}/v1"
            _wait_up(base + "/models", llm, "the demo model",
                     headers={"Authorization": "Bearer demo"})
            serve += ["--llm-base-url", base]
        service = subprocess.Popen(serve, env=env)
        procs.append(service)
        url = f"http://127.0.0.1:{args.port}"
        _wait_up(url + "/ib/api/health", service, "the ib service")

        client = IBClient(url, token)
        created = client.create_session(**demo_session(client))
        lab_url = None
        if not args.no_lab and _has_lab():
            lab_url, lab = start_lab(ib, url, created["candidate_token"], args, data, env)
            procs.append(lab)

        print_banner(url, token, created, lab_url)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


def _has_lab() -> bool:
    import importlib.util

    return importlib.util.find_spec("ib_extension.candidate.lab") is not None


def demo_session(client: IBClient) -> dict:
    body = {"candidate_name": "Demo Candidate", "time_limit_seconds": 45 * 60,
            "token_budget": 20_000, "assist_policy": "full"}
    try:
        from ..api.challenges import default_dirs, load_library

        library = load_library(default_dirs())
        first = library.search()[0] if library.search() else None
    except ImportError:
        first = None
    if first is not None:
        body["challenge_id"] = first.id
    else:
        body["challenge_title"] = "FizzBuzz"
        body["challenge_text"] = "Write `fizzbuzz(n)` returning the list of FizzBuzz strings for 1..n."
    return body


def start_lab(ib: list[str], url: str, candidate_token: str, args, data: Path, env: dict):
    # `ib lab` strips every secret before JupyterLab starts (lab.lab_env: the one place).
    lab_token = secrets.token_hex(16)
    lab = subprocess.Popen(ib + ["lab", "--service-url", url, "--session-token", candidate_token,
                                 "--port", str(args.lab_port), "--workdir",
                                 str(data / "candidate"), "--lab-token", lab_token], env=env)
    lab_url = f"http://127.0.0.1:{args.lab_port}/lab?token={lab_token}"
    _wait_up(f"http://127.0.0.1:{args.lab_port}/api", lab, "the candidate workspace")
    return lab_url, lab


def print_banner(url: str, token: str, created: dict, lab_url: str | None) -> None:
    line = "=" * 72
    print(f"\n{line}\nInterview Buddy demo is running.\n")
    print(f"Interviewer dashboard: {url}/voila/render/monitor.ipynb?token={token}")
    print(f"  create a session:    {url}/voila/render/create.ipynb?token={token}")
    print(f"  analytics:           {url}/voila/render/analytics.ipynb?token={token}")
    print(f"  API (OpenAPI):       {url}/ib/api/openapi.json   (IB_TOKEN={token})")
    print(f"  health:              {url}/ib/api/health")
    if lab_url:
        print(f"\nCandidate workspace:   {lab_url}")
    print(f"\nDemo session {created['id']} — candidate token: {created['candidate_token']}")
    print(f"  any OpenAI client:   base_url={url}/ib/v1  api_key=<candidate token>")
    print(f"\nPress Ctrl-C to stop.\n{line}", flush=True)
