"""Interview Buddy on a real JupyterHub (`ib hub`, its real proxy, real spawned servers):
who reaches what, the candidate link's rules, the end of an interview (capture through
the hub, then stop, then removal), and, as root, what a candidate's code cannot read.

One hub for the whole module; browsers here are httpx clients with their own cookies
(the full browser journey is tests/browser/test_hub_interview.py)."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import uuid

import httpx
import pytest
import websockets.sync.client
from helpers import wait_for
from hub import IB_TOKEN, Browser, start_hub, stop_hub, wait_closed

from ib_extension.api import hub as contract

pytestmark = pytest.mark.slow
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def hub(fake_llm_url, tmp_path_factory):
    # Short waits: no browser saves at the end here, and removal right after the capture.
    hub = start_hub(tmp_path_factory.mktemp("hub"), fake_llm_url,
                    "--IBExtension.capture_grace_seconds=2",
                    "--IBExtension.workspace_retention_hours=0",
                    "--IBExtension.default_assist_policy=hints")
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def pair(hub):
    """Two candidates with running workspaces, each in their own browser."""
    browsers = [Browser(hub), Browser(hub)]
    opened = [(b, *open_workspace(hub, b)) for b in browsers]
    yield opened
    with hub.client() as c:
        for _, created, _ in opened:
            c.action(created["id"], "end")
    for b in browsers:
        b.close()


@pytest.fixture
def browser(hub):
    b = Browser(hub)
    yield b
    b.close()


def open_workspace(hub, browser, **session) -> tuple[dict, str]:
    """A session whose candidate opened the link in `browser`; (created, hub user)."""
    created = hub.create_session(**session)
    r = browser.open_link(created["candidate_url"])
    assert r.status_code == 200, r.text[:500]
    user = contract.hub_user_for(created["id"])
    hub.wait_ready(user)
    # What the spawn-pending page's script does once the server is up (httpx runs none).
    lab = browser.get(f"/user/{user}/lab/tree/interview.ipynb")
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    return created, user


def run_in_kernel(hub, user: str, code: str) -> str:
    """Run `code` in a new kernel of `user`'s server (as that user's token could); stdout."""
    token = hub.token_for(user)
    base = f"/user/{user}/api"
    headers = {"Authorization": f"token {token}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=120) as http:
        kernel = http.post(f"{base}/kernels", json={"name": "python3"}).json()["id"]
        try:
            msg_id = uuid.uuid4().hex
            ws_url = hub.url.replace("http", "ws", 1) + f"{base}/kernels/{kernel}/channels"
            with websockets.sync.client.connect(ws_url, additional_headers=headers,
                                                open_timeout=60) as ws:
                ws.send(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "",
                               "session": uuid.uuid4().hex, "version": "5.3"},
                    "parent_header": {}, "metadata": {}, "channel": "shell",
                    "content": {"code": code, "silent": False, "store_history": False,
                                "user_expressions": {}, "allow_stdin": False}}))
                out = []
                while True:
                    msg = json.loads(ws.recv(timeout=120))
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind = msg["msg_type"]
                    if kind == "stream":
                        out.append(msg["content"]["text"])
                    elif kind == "error":
                        raise AssertionError("\n".join(msg["content"]["traceback"]))
                    elif kind == "status" and msg["content"]["execution_state"] == "idle":
                        return "".join(out)
        finally:
            http.delete(f"{base}/kernels/{kernel}")


# ---- operations ---------------------------------------------------------------------------
def test_health_is_public(hub):
    r = httpx.get(f"{hub.svc}/ib/api/health", timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert httpx.get(f"{hub.url}/hub/health", timeout=30).status_code == 200


def test_settings_on_ib_hubs_command_line_reach_the_service(hub):
    with hub.client() as c:
        offered = c.models()
    assert offered["default_assist_policy"] == "hints"
    assert offered["candidate_links"] is True


def test_the_hubs_routes_answer_only_the_hub(hub):
    created = hub.create_session()
    for headers in ({}, {"Authorization": f"token {IB_TOKEN}"},
                    {"Authorization": f"Bearer {created['candidate_token']}"}):
        r = httpx.post(f"{hub.svc}{contract.SPAWN_ROUTE}", headers=headers, timeout=30,
                       json={"hub_user": contract.hub_user_for(created["id"])})
        assert r.status_code in (401, 403), r.text
        assert "IB_SESSION_TOKEN" not in r.text


def test_scripts_use_the_interviewer_token_through_the_hub(hub):
    ib = [sys.executable, "-m", "ib_extension.cli"]
    out = subprocess.run([*ib, "session", "create", "--url", hub.svc, "--token", IB_TOKEN,
                          "--candidate", "Ada", "--minutes", "30", "--tokens", "3000",
                          "--challenge-text", "Write fizzbuzz.", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    hub.users.add(contract.hub_user_for(created["id"]))
    assert created["candidate_url"].startswith(f"{hub.url}/hub/{contract.LINK_PATH}/ibl_")
    listed = subprocess.run([*ib, "session", "list", "--url", hub.svc, "--token", IB_TOKEN],
                            capture_output=True, text=True, timeout=120)
    assert created["id"] in listed.stdout
    wrong = httpx.get(f"{hub.svc}/ib/api/sessions", headers={"Authorization": "token nope"})
    assert wrong.status_code == 401


# ---- interviewers -------------------------------------------------------------------------
def test_an_interviewer_signs_in_through_the_hub(hub, browser):
    assert browser.sign_in("interviewer").status_code == 200
    # A page signs the browser in to the service (OAuth with the hub); the API then works
    # with that login, as the dashboards' own requests do.
    page = browser.get(f"{hub.svc}/voila/render/create.ipynb")
    assert page.status_code == 200 and "Interview Buddy" in page.text
    r = browser.get(f"{hub.svc}/ib/api/sessions")
    assert r.status_code == 200, r.text[:300]
    assert "sessions" in r.json()


def test_a_hub_user_outside_the_interviewers_group_is_refused(hub, browser):
    assert browser.sign_in("visitor").status_code == 200
    page = browser.get(f"{hub.svc}/voila/render/monitor.ipynb")
    assert page.status_code == 403 and "permission" in page.text
    # With a hub token of their own, the service says why.
    with hub.admin() as a:
        token = a.post("/users/visitor/tokens", json={"expires_in": 600}).json()["token"]
    r = httpx.get(f"{hub.svc}/ib/api/sessions", headers={"Authorization": f"token {token}"})
    assert r.status_code == 403
    assert "group 'interviewers'" in r.json()["error"]["message"]


def test_a_candidate_cannot_sign_in_with_a_password(hub, browser):
    created = hub.create_session()
    r = browser.sign_in(contract.hub_user_for(created["id"]))
    assert "/hub/login" in str(r.url)  # refused: back on the login form
    assert browser.get("/hub/home").url.path == "/hub/login"


# ---- the candidate link -------------------------------------------------------------------
def test_the_link_opens_one_workspace_in_one_browser(hub, browser):
    created, user = open_workspace(hub, browser)
    notebook = browser.get(f"/user/{user}/api/contents/interview.ipynb").json()
    assert notebook["content"]["metadata"]["ib"]["session_id"] == created["id"]
    # The same browser comes back to the same workspace.
    again = browser.open_link(created["candidate_url"])
    assert again.status_code == 200 and f"/user/{user}/" in str(again.url)
    # Another browser is refused with a sentence.
    other = Browser(hub)
    refused = other.open_link(created["candidate_url"])
    assert refused.status_code == 409
    assert "already open in another browser" in refused.text
    # The interviewer issues a new link: the old one stops working, the new one opens the
    # same workspace in the new browser, and the first browser is signed out.
    with hub.client() as c:
        fresh = c.new_link(created["id"])["candidate_url"]
    assert browser.open_link(created["candidate_url"]).status_code == 404
    moved = other.open_link(fresh)
    assert moved.status_code == 200 and f"/user/{user}/" in str(moved.url)
    assert browser.get("/hub/home").url.path == "/hub/login"
    other.close()


def test_the_session_token_reaches_the_server_in_its_environment_only(hub, pair):
    (_, _, user), _ = pair
    server_pid = (hub.server(user).get("state") or {}).get("pid")  # the test's admin scope
    commands = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            commands.append(open(f"/proc/{pid}/cmdline", "rb").read())
        except OSError:
            continue
    assert not [c for c in commands if b"ibc_" in c or b"IB_SESSION_TOKEN" in c]
    assert server_pid
    if AS_ROOT:  # the test can look at the candidate's server's environment: it is there
        environ = open(f"/proc/{server_pid}/environ", "rb").read().split(b"\0")
        assert any(v.startswith(b"IB_SESSION_TOKEN=ibc_") for v in environ)
        assert any(v.startswith(b"IB_SERVICE_URL=http") for v in environ)
        assert not any(v.startswith((b"OPENAI_API_KEY=", b"IB_TOKEN=")) for v in environ)


def test_a_candidate_reaches_only_their_own_server(hub, pair):
    (browser, _, user), (_, _, other_user) = pair
    assert browser.get(f"/user/{user}/api/contents").status_code == 200
    assert browser.get(f"{hub.svc}/voila/render/monitor.ipynb").status_code == 403
    assert browser.get(f"{hub.svc}/ib/api/sessions").status_code in (401, 403)
    assert browser.get("/hub/admin").status_code == 403
    assert browser.get(f"/user/{other_user}/api/contents").status_code == 403


# ---- the end of an interview --------------------------------------------------------------
def test_the_end_captures_the_notebook_stops_the_server_and_removes_the_workspace(hub, browser):
    created, user = open_workspace(hub, browser)
    path = f"{hub.url}/user/{user}/api/contents/interview.ipynb"
    as_candidate = {"Authorization": f"token {hub.token_for(user)}"}
    model = httpx.get(path, headers=as_candidate, timeout=60).json()
    model["content"]["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [],
                                      "execution_count": None,
                                      "source": "def fizzbuzz(n):  # the last edit\n    ..."})
    saved = httpx.put(path, headers=as_candidate, timeout=60,
                      json={"type": "notebook", "content": model["content"]})
    assert saved.status_code == 200, saved.text[:300]
    with hub.client() as c:
        c.action(created["id"], "end")
        closed = wait_closed(hub, created["id"])
        record = c.record(created["id"])
    assert closed["payload"]["problem"] is None
    assert "the last edit" in json.dumps(record["final_notebook"])
    assert closed["payload"]["server_stopped"]
    wait_for(lambda: hub.server(user) is None, "the server to stop", within=120, every=0.5)
    over = browser.open_link(created["candidate_url"])
    assert over.status_code == 410 and "This interview is over" in over.text
    # Retention 0 here: the hub user goes, and with it the system user and its home.
    with hub.admin() as a:
        wait_for(lambda: a.get(f"/users/{user}").status_code == 404, "the hub user's removal",
                 within=120, every=0.5)
    if AS_ROOT:
        with pytest.raises(KeyError):
            pwd.getpwnam(user)
        assert not os.path.exists(f"/home/{user}")


def test_an_interview_ended_before_its_link_was_opened_closes_and_is_graded(hub):
    created = hub.create_session()
    with hub.client() as c:
        c.action(created["id"], "end")
        closed = wait_closed(hub, created["id"])
        assert closed["payload"]["problem"] == "the link was never opened"
        wait_for(lambda: c.events(created["id"], "grade.*")["events"], "the grading step",
                 within=60, every=0.5)
        wait_for(lambda: c.events(created["id"], "workspace.removed")["events"],
                 "the workspace's removal", within=60, every=0.5)


# ---- isolation ----------------------------------------------------------------------------
PROBE = """
import os, json
def denied(action):
    try:
        action()
    except PermissionError:
        return True
    except OSError as e:
        return f"other error: {e!r}"
    return False
result = {"uid": os.getuid(), "env": sorted(k for k in os.environ if k in SECRETS)}
for name, (kind, path) in TARGETS.items():
    result[name] = denied(lambda: open(path, "rb").read(1) if kind == "file" else os.listdir(path))
print(json.dumps(result))
"""


@pytest.mark.skipif(not AS_ROOT, reason="candidates get their own system users only as root")
def test_a_candidates_code_cannot_read_the_service_the_hub_or_another_candidate(hub, pair):
    (_, _, user), (_, _, other_user) = pair
    service_pid = next(int(p) for p in os.listdir("/proc") if p.isdigit() and _is_service(p, hub))
    targets = {
        "service_environ": ("file", f"/proc/{service_pid}/environ"),
        "data_dir": ("dir", str(hub.data_dir)),
        "hub_db": ("file", str(hub.data_dir / "hub" / "jupyterhub.sqlite")),
        "duckdb": ("file", str(hub.data_dir / "service" / "ib.duckdb")),
        "other_home": ("dir", pwd.getpwnam(other_user).pw_dir),
        "challenges": ("dir", str(_challenges())),
    }
    code = (f"TARGETS = {targets!r}\nSECRETS = "
            f"{['OPENAI_API_KEY', 'IB_LLM_API_KEY', 'IB_TOKEN', 'IB_URL', 'CONFIGPROXY_AUTH_TOKEN']!r}\n"
            + PROBE)
    seen = json.loads(run_in_kernel(hub, user, code))
    assert seen["uid"] == pwd.getpwnam(user).pw_uid != os.stat(f"/proc/{service_pid}").st_uid
    assert seen["env"] == []
    assert {k: seen[k] for k in targets} == dict.fromkeys(targets, True)


def _is_service(pid: str, hub) -> bool:
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    # `ib serve` re-executes itself as `python -m ib_extension.cli.serve --IBExtension...`
    return b"ib_extension.cli.serve" in cmdline and \
        f"--IBExtension.data_dir={hub.data_dir / 'service'}".encode() in cmdline


def _challenges():
    from ib_extension.api.challenges import default_dirs

    return default_dirs()[0]
