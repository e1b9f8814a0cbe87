"""Shared fixtures: the offline demo model as a real subprocess, and the ib service in a
real Jupyter server (pytest-jupyter) with an injectable clock."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from helpers import (  # noqa: F401  (tests import these from helpers, never from conftest)
    INTERVIEWER_TOKEN,
    PROVIDER_KEY,
    REPO,
    candidate_client,
    free_port,
    session_body,
    stop,
    wait_until_up,
)

from ib_extension.service.clock import ManualClock

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def fake_llm_url():
    """The bundled offline demo model, really started, on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ib_extension.cli.fake_llm", "--port", str(port)],
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
        "data_dir": str(tmp_path / "ib-data"),
        "llm_base_url": fake_llm_url,
        "models": ["gpt-4o-mini", "gpt-4o"],
        "llm_max_retries": 0,
        "llm_timeout": 10.0,
        "tick_seconds": 3600.0,  # tests drive the clock and call tick() themselves
        "gc_freeze": False,  # one process runs many servers (test_api_basics turns it on)
        "keep_freed_memory": False,  # likewise: it would outlast the server
    }


@pytest.fixture
def jp_server_config(ib_config, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    return {
        "ServerApp": {"jpserver_extensions": {"ib_extension.service": True},
                      "reraise_server_extension_failures": True},
        "IdentityProvider": {"token": INTERVIEWER_TOKEN},
        "IBExtension": ib_config,
    }


@pytest.fixture
def ib_app(jp_serverapp, clock):
    """The loaded extension, its service's clock swapped for the manual one."""
    app = jp_serverapp.extension_manager.extension_apps["ib_extension.service"]
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


@pytest.fixture
def make_session(aio_interviewer):
    async def make(**overrides):
        r = await aio_interviewer.post("/ib/api/sessions", json=session_body(**overrides))
        assert r.status_code == 201, r.text
        return r.json()
    return make


os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")


@pytest.fixture(scope="module")
def live(fake_llm_url, tmp_path_factory):
    """`ib serve` as a real process on a free port, with the offline demo model (one per
    module; tests make their own sessions)."""
    from live import start_service, stop_service

    service = start_service(fake_llm_url, tmp_path_factory.mktemp("live") / "data")
    yield service
    stop_service(service)

