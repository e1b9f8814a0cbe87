"""A live ib service as a real subprocess (`ib serve`), for notebook and browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from helpers import free_port, stop, wait_until_up

from ib_extension.api.client import IBClient


@dataclass
class LiveService:
    url: str
    token: str
    data_dir: Path
    proc: subprocess.Popen
    client: IBClient

    def create_session(self, **overrides) -> dict:
        body = {"candidate_name": "Grace Hopper", "time_limit_seconds": 1800,
                "token_budget": 20000, "challenge_title": "FizzBuzz",
                "challenge_text": "Write `fizzbuzz(n)`."}
        body.update(overrides)
        return self.client.create_session(**body)


def start_service(fake_llm_url: str, data_dir: Path, token: str = "live-interviewer-token",
                  extra_args: list[str] | None = None,
                  extra_env: dict[str, str] | None = None) -> LiveService:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
    env["IB_TOKEN"] = token
    env.update(extra_env or {})
    cmd = [sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port),
           "--data-dir", str(data_dir), "--llm-base-url", fake_llm_url, *(extra_args or [])]
    log = open(data_dir.parent / f"service-{port}.log", "w")  # noqa: SIM115 (kept for the process's life)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/ib/api/health", proc)
    return LiveService(url, token, data_dir, proc, IBClient(url, token))


def stop_service(live: LiveService) -> None:
    live.client.close()
    stop(live.proc)


# ---- a candidate's workspace (`ib lab`) ---------------------------------------------------
SECRETS = {"OPENAI_API_KEY": "sk-launching-shell-key", "IB_LLM_API_KEY": "sk-other-provider",
           "IB_TOKEN": "interviewer-token-in-shell"}
STARTER = "def fizzbuzz(n):\n    raise NotImplementedError\n"


@dataclass
class Lab:
    url: str
    token: str
    workdir: Path
    proc: subprocess.Popen
    session_id: str

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"token {self.token}"},
                            timeout=30, **kw)


def start_lab(live, tmp: Path, **session) -> Lab:
    created = live.create_session(**session)
    port, token = free_port(), "lab-token-for-tests"
    env = {**os.environ, **SECRETS}  # the launching shell has every secret
    workdir = tmp / f"ws-{created['id']}"
    log = open(tmp / f"lab-{port}.log", "w")  # noqa: SIM115 (kept for the process's life)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ib_extension.cli", "lab", "--service-url", live.url,
         "--session-token", created["candidate_token"], "--port", str(port),
         "--workdir", str(workdir), "--lab-token", token],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/api/status", proc, headers={"Authorization": f"token {token}"})
    return Lab(url, token, workdir, proc, created["id"])
