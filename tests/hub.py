"""A real JupyterHub for tests: `ib hub` as a subprocess on free loopback ports, with its
real proxy, the ib service as its managed service, and real spawned candidate servers.

One per test module (a hub takes tens of seconds to start). The test config adds a user
outside the group `interviewers` ("visitor") and a test-only hub service with admin
scopes ("ib-tests"), so tests can look at the hub from outside as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from helpers import wait_for

from ib_extension.api import hub as contract
from ib_extension.api.client import IBClient

PASSWORD = "interviewer-password-for-tests"
ADMIN_TOKEN = "ib-tests-admin-token-0123456789abcdef"
IB_TOKEN = "hub-interviewer-token-for-tests"
TEST_CONFIG = f"""
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allowed_users = {{"interviewer", "visitor"}}
c.JupyterHub.services = [{{"name": "ib-tests", "api_token": {ADMIN_TOKEN!r}}}]
c.JupyterHub.load_roles = [{{"name": "ib-tests", "services": ["ib-tests"],
                            "scopes": ["admin:users", "admin:servers", "tokens", "list:users"]}}]
c.JupyterHub.log_level = "INFO"
"""


def free_port_block(count: int = 5) -> int:
    """A base port with `count` free ports after it (the hub's internal ports follow it)."""
    for _ in range(200):
        base = random.randrange(10000, 30000)  # below Linux's ephemeral ports (32768+)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no block of free ports")


@dataclass
class Hub:
    url: str
    data_dir: Path
    proc: subprocess.Popen
    log: Path
    users: set[str] = field(default_factory=set)

    @property
    def svc(self) -> str:
        return self.url + contract.SERVICE_PREFIX.rstrip("/")

    def client(self) -> IBClient:
        return IBClient(self.svc, IB_TOKEN)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/hub/api", timeout=60,
                            headers={"Authorization": f"token {ADMIN_TOKEN}"})

    def create_session(self, **overrides) -> dict:
        body = {"candidate_name": "Grace Hopper", "time_limit_seconds": 1800,
                "token_budget": 20000, "challenge_title": "FizzBuzz",
                "challenge_text": "Write `fizzbuzz(n)`."}
        body.update(overrides)
        with self.client() as c:
            created = c.create_session(**body)
        self.users.add(contract.hub_user_for(created["id"]))
        return created

    def server(self, user: str) -> dict | None:
        with self.admin() as a:
            r = a.get(f"/users/{user}")
        return (r.json().get("servers") or {}).get("") if r.status_code == 200 else None

    def wait_ready(self, user: str, within: float = 180) -> dict:
        return wait_for(lambda: (self.server(user) or {}).get("ready") and self.server(user),
                        f"{user}'s server", within, every=0.5)

    def token_for(self, user: str) -> str:
        """A token that reaches only `user`'s server (as the candidate could make)."""
        with self.admin() as a:
            r = a.post(f"/users/{user}/tokens", json={
                "scopes": [f"access:servers!server={user}/"], "expires_in": 3600})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_hub(tmp: Path, llm_url: str | None, *ib_settings: str, extra_config: str = "") -> Hub:
    """`llm_url` None: `--demo`, the bundled demo model as a hub service (`make demo`).
    Another process may take one of the ports between the check and the bind (this
    machine is shared): then it starts again on other ports."""
    for attempt in range(3):
        try:
            return _start_hub(tmp, llm_url, ib_settings, extra_config)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("not reached")


class PortTaken(RuntimeError):
    pass


def _start_hub(tmp: Path, llm_url: str | None, ib_settings, extra_config: str) -> Hub:
    port = free_port_block()
    # As root the service runs as its own user, which must pass through to its data dir:
    # pytest's temporary folders let nobody else through, so the data dir lives beside them.
    data = Path(tempfile.mkdtemp(prefix="ib-hub-test-"))
    data.chmod(0o711)
    config = tmp / "hub_config.py"
    config.write_text(TEST_CONFIG + extra_config)
    log = tmp / f"hub-{port}.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "IB_LLM_API_KEY", "IB_URL", "IB_TOKEN")}
    env["IB_TOKEN"] = IB_TOKEN
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ib_extension.cli", "hub", "--port", str(port),
             "--data-dir", str(data), "--config", str(config),
             *(["--llm-base-url", llm_url] if llm_url else ["--demo"]), *ib_settings],
            stdout=out, stderr=subprocess.STDOUT, env=env,
            # as a shell starts a command in the background: SIGINT ignored (stop_hub
            # checks that everything it started still stops)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    hub = Hub(f"http://127.0.0.1:{port}", data, proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            logs = hub.logs()
            shutil.rmtree(data, ignore_errors=True)
            kind = PortTaken if "Address already in use" in logs else RuntimeError
            raise kind(f"ib hub exited ({proc.returncode}):\n{logs[-3000:]}")
        return "is ready" in hub.logs()

    wait_for(ready, "ib hub to be ready", within=420, every=0.5)
    return hub


def stop_hub(hub: Hub) -> None:
    """Stop `ib hub` as an operator would (SIGTERM); it must take down everything it
    started (the hub, its proxy, services and candidates' servers), none left behind."""
    started = descendants(hub.proc.pid)
    hub.proc.terminate()
    try:
        hub.proc.wait(120)
    except subprocess.TimeoutExpired:
        hub.proc.kill()
        hub.proc.wait()
    try:
        wait_for(lambda: not running(started), "what ib hub started to stop", within=30)
    except TimeoutError:
        left = {pid: cmdline(pid) for pid in running(started)}
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"ib hub left these running: {left}") from None
    for user in hub.users:  # system users a test left behind (the service removes its own)
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        subprocess.run(["userdel", "--remove", user], capture_output=True)
    shutil.rmtree(hub.data_dir, ignore_errors=True)


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (each thread's children)."""
    found, todo = set(), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:  # gone meanwhile
                continue
            todo += [c for c in children if c not in found]
            found.update(children)
    return found


def running(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has stopped; its parent reaps it)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


# ---- a browser without JavaScript: httpx with its own cookie jar --------------------------
class Browser:
    """One browser: its own cookies, following redirects like a browser would."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.http = httpx.Client(base_url=hub.url, follow_redirects=True, timeout=120)

    def get(self, url: str, **kw) -> httpx.Response:
        return self.http.get(url, **kw)

    def sign_in(self, user: str, password: str = PASSWORD, next_url: str = "/hub/home"):
        page = self.http.get("/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        return self.http.post("/hub/login", params={"next": next_url},
                              data={"username": user, "password": password, "_xsrf": xsrf})

    def open_link(self, url: str) -> httpx.Response:
        return self.http.get(url)

    def close(self) -> None:
        self.http.close()


def wait_closed(hub: Hub, session_id: str, within: float = 120) -> dict:
    """The `workspace.closed` event of a session (the end's capture and stop are done)."""
    def closed():
        with hub.client() as c:
            found = c.events(session_id, "workspace.closed")["events"]
        return found[-1] if found else None

    return wait_for(closed, f"the workspace of {session_id} to close", within, every=0.5)


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 1)
