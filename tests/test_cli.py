"""The `ib` command as an operator runs it: the installed console script, real processes,
a real `ib serve` to talk to, and `ib demo` started and stopped as a whole.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import psutil
import pytest
from helpers import free_port, wait_for

from ib_extension import cli
from ib_extension.cli import DEFAULT_MODELS

IB = Path(sys.executable).with_name("ib")  # the console script the package installs
SECRET_ENV = ("OPENAI_API_KEY", "IB_LLM_API_KEY", "IB_LLM_BASE_URL", "IB_URL", "IB_TOKEN")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without provider keys or service defaults, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env.update(extra)
    return env


def ib(*args: str, env: dict[str, str] | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(IB), *args], env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout)



def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def conn(live) -> list[str]:
    return ["--url", live.url, "--token", live.token]


def test_session_create_json_gives_an_id_and_a_candidate_token_that_work(live, conn):
    text = "Write `is_prime(n)`."
    out = ib("session", "create", *conn, "--candidate", "Ada Lovelace", "--minutes", "25",
             "--tokens", "3000", "--challenge-text", text, "--json")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    s = live.client.session(created["id"])
    assert (s["candidate_name"], s["time_limit_seconds"], s["token_budget"]) == (
        "Ada Lovelace", 25 * 60, 3000)
    assert s["challenge"]["statement"] == text

    with openai.OpenAI(base_url=live.url + "/ib/v1", api_key=created["candidate_token"],
                       max_retries=0) as client:
        reply = client.chat.completions.create(
            model=s["model"], messages=[{"role": "user", "content": "How do I test it?"}])
    assert reply.choices[0].message.content
    assert live.client.session(created["id"])["tokens_used"] == reply.usage.total_tokens


def test_session_token_issues_a_new_token_and_the_old_one_stops_working(live, conn):
    created = live.create_session(candidate_name="Lost Link")
    out = ib("session", "token", *conn, created["id"])
    assert out.returncode == 0, out.stderr
    new = re.search(r"candidate token: (ibc_\S+)", out.stdout).group(1)
    assert f"--session-token {new}" in out.stdout and "stopped working" in out.stdout
    me = lambda token: httpx.get(f"{live.url}/ib/api/me",  # noqa: E731
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me(created["candidate_token"]).status_code == 401
    assert me(new).json()["id"] == created["id"]


def test_the_service_root_opens_the_monitor(live):
    r = httpx.get(f"{live.url}/", headers={"Authorization": f"token {live.token}"}, timeout=10)
    assert r.status_code in (301, 302)
    assert r.headers["Location"].rstrip("?").endswith("/voila/render/monitor.ipynb")


def test_client_commands_default_to_ib_url_and_ib_token(live):
    env = clean_env(IB_URL=live.url, IB_TOKEN=live.token)
    out = ib("session", "create", "--candidate", "Env Default", "--minutes", "10", "--tokens",
             "1000", "--challenge-text", "Anything.", env=env)
    assert out.returncode == 0, out.stderr
    sid = re.search(r"session id:\s+(s_\w+)", out.stdout).group(1)
    token = re.search(r"candidate token:\s+(\S+)", out.stdout).group(1)
    assert live.client.session(sid)["candidate_name"] == "Env Default"
    assert token.startswith("ibc_")

    listed = ib("session", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sid in {s["id"] for s in json.loads(listed.stdout)}


def test_lifecycle_subcommands_change_the_session(live, conn, capsys):
    """In-process (`cli.main`), to spare a second of interpreter start per command; the
    console script itself is exercised by the tests above."""
    sid = live.create_session(candidate_name="Lifecycle Lin", time_limit_seconds=600,
                              token_budget=2000)["id"]
    live.client.action(sid, "start")

    def run(*args: str) -> dict:
        assert cli.main(["session", *args, *conn]) == 0, capsys.readouterr().err
        printed = json.loads(capsys.readouterr().out)
        assert printed == live.client.session(sid) | {
            k: printed[k] for k in ("time_used_seconds", "time_left_seconds",
                                    "time_paused_seconds", "deadline")}
        return printed

    assert run("pause", sid)["status"] == "paused"
    assert run("resume", sid)["status"] == "active"
    assert run("extend-time", sid, "5")["time_limit_seconds"] == 600 + 5 * 60
    assert run("extend-tokens", sid, "750")["token_budget"] == 2000 + 750
    ended = run("end", sid)
    assert (ended["status"], ended["end_reason"]) == ("completed", "interviewer")

    assert cli.main(["session", "list", *conn, "--status", "completed"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(sid))
    assert "completed" in line and "Lifecycle Lin" in line


def test_a_refused_action_exits_1_with_the_services_sentence(live, conn):
    sid = live.create_session(candidate_name="Not Started")["id"]
    out = ib("session", "resume", sid, *conn)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "cannot resume" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_bad_token_exits_1_with_a_clear_error(live):
    out = ib("session", "list", "--url", live.url, "--token", "not-the-token")
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "token is not valid" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_an_unreachable_service_gives_a_clear_error():
    out = ib("session", "list", "--url", f"http://127.0.0.1:{free_port()}", "--token", "t")
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr


def test_serve_without_provider_or_key_exits_with_a_sentence(tmp_path):
    port = free_port()
    out = ib("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert out.returncode != 0
    assert out.stderr.startswith("error: No LLM provider")
    assert "OPENAI_API_KEY" in out.stderr and "--llm-base-url" in out.stderr
    assert "Traceback" not in out.stderr
    assert not listening(port)


def test_serve_offers_its_models_and_chats_with_the_default_one(live):
    assert live.client.models()["models"] == DEFAULT_MODELS
    created = live.create_session(candidate_name="Model Mo")
    with openai.OpenAI(base_url=live.url + "/ib/v1", api_key=created["candidate_token"],
                       max_retries=0) as client:
        reply = client.chat.completions.create(
            model=DEFAULT_MODELS[0], messages=[{"role": "user", "content": "Hello?"}])
    assert reply.choices[0].message.content


def test_fake_llm_help():
    out = ib("fake-llm", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: ib fake-llm")
    assert "--port" in out.stdout and "--tokens-per-second" in out.stdout


class OutputReader(threading.Thread):
    """Collects a process's output lines; `banner` is set once the demo's banner is complete."""

    def __init__(self, proc: subprocess.Popen):
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []
        self.banner = threading.Event()

    def run(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("Press Ctrl-C"):
                self.banner.set()

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_demo_prints_what_to_open_and_stops_its_children(tmp_path):
    port, llm_port = free_port(), free_port()
    demo = subprocess.Popen(
        [str(IB), "demo", "--no-lab", "--port", str(port), "--llm-port", str(llm_port),
         "--data-dir", str(tmp_path / "demo")],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = OutputReader(demo)
    reader.start()
    try:
        assert reader.banner.wait(90), f"no banner; output so far:\n{reader.text}"
        children = psutil.Process(demo.pid).children(recursive=True)

        dashboard = re.search(r"Interviewer dashboard:\s+(\S+)", reader.text).group(1)
        url, token = re.fullmatch(r"(http://127\.0\.0\.1:\d+)/voila/render/monitor\.ipynb"
                                  r"\?token=(\w+)", dashboard).groups()
        assert url == f"http://127.0.0.1:{port}"
        session_id = re.search(r"Demo session (s_\w+)", reader.text).group(1)
        openapi_url = re.search(r"API \(OpenAPI\):\s+(\S+)", reader.text).group(1)

        health = httpx.get(url + "/ib/api/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert httpx.get(openapi_url, timeout=10).json()["openapi"].startswith("3.")
        s = httpx.get(f"{url}/ib/api/sessions/{session_id}", timeout=10,
                      headers={"Authorization": f"token {token}"})
        assert s.status_code == 200 and s.json()["candidate_name"] == "Demo Candidate"
        assert listening(port) and listening(llm_port)
        assert len(children) >= 2  # the demo model and the service
    finally:
        demo.terminate()
        demo.wait(30)
    reader.join(30)
    assert demo.returncode == 0, reader.text
    # The demo waited for them itself; the cap is for a loaded machine.
    _, alive = psutil.wait_procs(children, timeout=60)
    assert alive == []
    assert not listening(port) and not listening(llm_port)


def test_demo_terminated_while_starting_stops_its_children(tmp_path):
    port, llm_port = free_port(), free_port()
    demo = subprocess.Popen(
        [str(IB), "demo", "--no-lab", "--port", str(port), "--llm-port", str(llm_port),
         "--data-dir", str(tmp_path / "demo")],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        def service_spawned() -> bool:
            children[:] = psutil.Process(demo.pid).children(recursive=True)
            return len(children) >= 2

        # The demo model is up and the service spawned; it needs seconds to answer, and
        # the demo prints its banner only after that.
        wait_for(service_spawned, "the demo to spawn the service", 60.0)
        demo.terminate()
        demo.wait(30)
        # The demo waits for them itself; a child still starting up (a probe of the service)
        # may take a while to go on a loaded machine.
        _, alive = psutil.wait_procs(children, timeout=60)
        assert alive == []
        assert not listening(llm_port)
    finally:
        if demo.poll() is None:
            demo.kill()
        for child in children:  # what the demo left behind: ours to clean up
            if child.is_running():
                child.kill()
