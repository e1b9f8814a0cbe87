"""Shared fixtures: the offline demo model as a real subprocess, and the ib service in a
real Jupyter server (pytest-jupyter) with an injectable clock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ib_extension.clock import ManualClock

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO = Path(__file__).resolve().parent.parent
INTERVIEWER_TOKEN = "interviewer-secret-token"
PROVIDER_KEY = "sk-test-provider-key-never-leaks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, headers: dict | None = None,
                  within: float = 60.0) -> None:
    """Poll `url` until it answers (a condition, not a sleep for time)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} came up")
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {within} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def fake_llm_url():
    """The bundled offline demo model, really started, on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ib_extension.fake_llm", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_up(url + "/models", proc, headers={"Authorization": "Bearer x"})
    yield url
    stop(proc)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def ib_config(fake_llm_url, tmp_path):
    """Extra IBExtension settings a test can override before the server starts."""
    return {
        "role": "service",
        "data_dir": str(tmp_path / "ib-data"),
        "llm_base_url": fake_llm_url,
        "models": ["gpt-4o-mini", "gpt-4o"],
        "llm_max_retries": 0,
        "llm_timeout": 10.0,
        "tick_seconds": 3600.0,  # tests drive the clock and call tick() themselves
    }


@pytest.fixture
def jp_server_config(ib_config, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    return {
        "ServerApp": {"jpserver_extensions": {"ib_extension": True},
                      "reraise_server_extension_failures": True},
        "IdentityProvider": {"token": INTERVIEWER_TOKEN},
        "IBExtension": ib_config,
    }


@pytest.fixture
def ib_app(jp_serverapp, clock):
    """The loaded extension, its service's clock swapped for the manual one."""
    app = jp_serverapp.extension_manager.extension_apps["ib_extension"]
    app = next(iter(app))
    app.clock = clock
    app.service.clock = clock
    return app


@pytest.fixture
def service(ib_app):
    return ib_app.service


@pytest.fixture
def base_url(jp_serverapp, http_server, jp_http_port, jp_base_url):
    """The service's real HTTP address (`http_server` makes pytest-jupyter accept on it)."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url.rstrip('/')}"


@pytest.fixture
def interviewer(base_url, ib_app):
    """An httpx client authenticated as the interviewer."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"token {INTERVIEWER_TOKEN}"},
                      timeout=30) as c:
        yield c


@pytest.fixture
def aio_interviewer(base_url, ib_app):
    return httpx.AsyncClient(base_url=base_url,
                             headers={"Authorization": f"token {INTERVIEWER_TOKEN}"}, timeout=30)


def session_body(**overrides):
    body = {"candidate_name": "Ada Lovelace", "candidate_email": "ada@example.com",
            "time_limit_seconds": 3600, "token_budget": 5000,
            "challenge_title": "FizzBuzz", "challenge_text": "Write fizzbuzz(n)."}
    body.update(overrides)
    return body


@pytest.fixture
def make_session(aio_interviewer):
    async def make(**overrides):
        r = await aio_interviewer.post("/ib/api/sessions", json=session_body(**overrides))
        assert r.status_code == 201, r.text
        return r.json()
    return make


def candidate_client(base_url: str, token: str, **kw):
    import openai

    return openai.AsyncOpenAI(base_url=base_url + "/ib/v1", api_key=token, max_retries=0, **kw)


os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
