"""`ib lab` and the candidate role, really started: the workspace, the environment of the
server and its kernels, the same-origin forwarding of the candidate API (streaming and
Stop), notebook snapshots on save, and submit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat
import pytest
from helpers import stop, wait_for
from live import SECRETS, STARTER, Lab, start_lab, start_service, stop_service  # noqa: F401  (Lab: used by the tests' types)

from ib_extension.api.resources import candidate_template
from ib_extension.candidate import lab, notebook


@pytest.fixture(scope="module")
def workspace(live, tmp_path_factory):
    ws = start_lab(live, tmp_path_factory.mktemp("labs"), challenge_title="FizzBuzz",
                   challenge_text="Write `fizzbuzz(n)`.")
    yield ws
    stop(ws.proc)



# ---- the template ---------------------------------------------------------------------
def test_template_gets_the_title_and_starter_code():
    template = json.loads(candidate_template().read_text())
    session = {"id": "s_1", "challenge": {"title": "Two Sum", "starter_code": STARTER}}
    nb = notebook.fill_template(template, session)
    roles = {c["metadata"].get("ib", {}).get("role"): c for c in nb["cells"]}
    assert "Interview** panel" in roles["title"]["source"]  # the panel needs no cell to run
    assert roles["title"]["source"].startswith("# Two Sum\n")
    assert roles["starter"]["source"] == STARTER
    assert nb["metadata"]["ib"] == {"session_id": "s_1"}
    assert template["cells"][1]["source"] != STARTER  # the template itself is untouched


def test_lab_env_drops_secrets_and_keeps_the_session():
    env = lab.lab_env({"PATH": "/bin", **SECRETS, "IB_URL": "http://svc"}, "http://svc",
                      "ibc_tok", "lab", Path("/w"))
    assert not set(SECRETS) & set(env) and "IB_URL" not in env
    assert (env["IB_SERVICE_URL"], env["IB_SESSION_TOKEN"], env["PATH"]) == (
        "http://svc", "ibc_tok", "/bin")


def test_a_wrong_token_stops_ib_lab_with_the_services_sentence(live, tmp_path):
    r = subprocess.run([sys.executable, "-m", "ib_extension.cli", "lab", "--service-url",
                        live.url, "--session-token", "ibc_not-a-token", "--workdir",
                        str(tmp_path / "ws")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "error:" in r.stderr and "unauthorized" in r.stderr
    assert not (tmp_path / "ws").exists()


# ---- the running workspace ---------------------------------------------------------------
def test_workspace_notebook_holds_the_challenge(workspace):
    nb = json.loads((workspace.workdir / notebook.NOTEBOOK_NAME).read_text())
    assert nb["cells"][0]["source"].startswith("# FizzBuzz\n")
    assert nb["metadata"]["ib"]["session_id"] == workspace.session_id


def test_the_first_layout_opens_the_candidate_notebook(workspace):
    with workspace.client() as c:
        layout = c.get("/lab/api/workspaces/default").json()
    assert layout["data"][f"notebook:{notebook.NOTEBOOK_NAME}"]["data"]["path"] == notebook.NOTEBOOK_NAME


def test_preparing_again_keeps_the_candidates_work(tmp_path):
    session = {"id": "s_1", "challenge": {"title": "T", "starter_code": STARTER}}
    notebook = lab.prepare_workdir(tmp_path, session)
    notebook.write_text("their work")
    lab.prepare_workdir(tmp_path, session)
    assert notebook.read_text() == "their work"


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _kernel_pid(kernel_id: str) -> int | None:
    """The process whose command line names this kernel's connection file."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"kernel-{kernel_id}".encode() in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_server_and_kernels_hold_no_secret(workspace):
    server_env = _environ(workspace.proc.pid)
    assert not set(SECRETS) & set(server_env)
    assert server_env["IB_SESSION_TOKEN"].startswith("ibc")
    with workspace.client() as c:
        kernel = c.post("/api/kernels", json={"name": "python3"}).json()
        try:
            pid = wait_for(lambda: _kernel_pid(kernel["id"]), "the kernel process")
            env = _environ(pid)
            assert not set(SECRETS) & set(env), "the kernel inherited a secret"
            assert env["IB_SERVICE_URL"] and env["IB_SESSION_TOKEN"] == server_env["IB_SESSION_TOKEN"]
        finally:
            c.delete(f"/api/kernels/{kernel['id']}")


def test_candidate_api_is_re_served_for_the_jupyter_session_only(workspace, live):
    with workspace.client() as c:
        me = c.get("/ib/api/me")
        assert me.status_code == 200 and me.json()["id"] == workspace.session_id
        assert c.get("/ib/api/me/messages").json() == {"messages": []}
        # Only the candidate API is forwarded: interviewer routes do not exist here.
        assert c.get("/ib/api/sessions").status_code == 404
        assert c.get(f"/ib/api/sessions/{workspace.session_id}").status_code == 404
    anonymous = httpx.get(workspace.url + "/ib/api/me", follow_redirects=False)
    assert anonymous.status_code in (302, 403)
    assert workspace.session_id not in anonymous.text


def test_refusals_keep_the_services_error_shape_and_headers(workspace, live):
    live.client.action(workspace.session_id, "lock")
    try:
        with workspace.client() as c:
            r = c.post("/ib/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": "hi"}]})
        assert 400 <= r.status_code < 500
        assert r.json()["error"]["code"] == "session_locked"
        assert r.headers["x-should-retry"] == "false"
    finally:
        live.client.action(workspace.session_id, "unlock")


def test_a_reply_streams_through_unbuffered(workspace):
    tokens, tps = 30, 20  # the reply takes about 1.5 s to stream
    body = {"messages": [{"role": "user", "content": f"go [[tokens:{tokens}]] [[slow:{tps}]]"}],
            "stream": True}
    arrivals = []
    with workspace.client() as c, c.stream("POST", "/ib/v1/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) >= tokens // 2
    # Buffering would deliver everything at the end; here the first token comes long before.
    assert arrivals[-1] - arrivals[0] > 0.5 * tokens / tps


def test_closing_the_request_stops_the_reply(workspace, live):
    body = {"messages": [{"role": "user", "content": "[[tokens:400]] [[slow:20]]"}], "stream": True}
    with workspace.client() as c, c.stream("POST", "/ib/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if '"content"' in line:
                break  # the candidate pressed Stop after the first words

    def stopped():
        msgs = live.client.messages(workspace.session_id)["messages"]
        last = msgs[-1]
        return last if last["role"] == "assistant" and last["status"] != "streaming" else None

    reply = wait_for(stopped, "the reply to stop")
    assert reply["status"] == "cut"
    assert reply["completion_tokens"] < 400


def test_saving_a_notebook_records_a_snapshot(workspace, live):
    nb = json.loads((workspace.workdir / notebook.NOTEBOOK_NAME).read_text())
    nb["cells"][1]["source"] = "def fizzbuzz(n):\n    return []\n"
    with workspace.client() as c:
        r = c.put(f"/api/contents/{notebook.NOTEBOOK_NAME}",
                  json={"type": "notebook", "format": "json", "content": nb})
        assert r.status_code == 200, r.text

    def snapshot():
        events = live.client.events(workspace.session_id, "activity.snapshot")["events"]
        return events[-1] if events else None

    event = wait_for(snapshot, "the snapshot event")
    assert event["payload"]["path"] == notebook.NOTEBOOK_NAME
    source = event["payload"]["notebook"]["cells"][1]["source"]  # as saved: a list of lines
    assert "".join(source) == nb["cells"][1]["source"]


def test_submit_sends_the_saved_notebook(live, tmp_path):
    ws = start_lab(live, tmp_path)
    try:
        with ws.client() as c:
            # The candidate's server refuses in the service's one error shape (the panel
            # shows its sentence).
            bad = c.post("/ib/candidate/submit", json={"path": "notes.txt"})
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "invalid_request"
            assert "path" in bad.json()["error"]["message"]
            missing = c.post("/ib/candidate/submit", json={"path": "nope.ipynb"})
            assert missing.status_code == 404
            assert missing.json()["error"]["message"] == "There is no notebook at nope.ipynb to submit."
            absolute = str(ws.workdir / notebook.NOTEBOOK_NAME)  # what kernels know
            r = c.post("/ib/candidate/submit", json={"path": absolute})
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["end_reason"]) == ("completed", "submitted")
        record = live.client.events(ws.session_id, "session.submitted")["events"][0]
        saved = nbformat.read(ws.workdir / notebook.NOTEBOOK_NAME, as_version=4)
        assert nbformat.reads(json.dumps(record["payload"]["notebook"]), as_version=4) == saved
    finally:
        stop(ws.proc)


def test_every_candidate_route_is_in_the_forwarded_allowlist():
    from ib_extension.candidate.server import FORWARDED, SERVER_ONLY
    from ib_extension.service.routes import ROUTES

    for template, cls, _ in ROUTES:
        if template in SERVER_ONLY:
            assert not re.fullmatch(FORWARDED, template)  # the browser never hands in
        elif any(op.audience == "candidate" for op in cls.ops.values()):
            path = template.replace("{model_id}", "gpt-4o-mini")
            assert re.fullmatch(FORWARDED, path), f"{template} is not forwarded"


def test_openai_clients_reach_the_responses_api_and_the_model_through_the_workspace(
        workspace, live):
    model = live.client.session(workspace.session_id)["model"]
    with workspace.client() as c:
        assert c.get(f"/ib/v1/models/{model}").json()["id"] == model
        r = c.post("/ib/v1/responses", json={"input": "How do I sort a list?"})
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "response" and r.json()["output"][0]["type"] == "message"
