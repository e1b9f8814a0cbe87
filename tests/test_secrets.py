"""Secrets stay in the service: the provider key and candidate tokens, against a real
`ib serve` started with recognisable fake keys in OPENAI_API_KEY and IB_LLM_API_KEY (the
variable for other providers).

One module-scoped run walks every operation of the OpenAPI document as each role,
records every response, then stops the service; the tests search what was recorded,
the service's log, its DuckDB file and a kernel's environment.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import psutil
import pytest
from helpers import free_port, stop, wait_for, wait_until_up

# One fake key per variable the service reads a key from.
PROVIDER_KEYS = {var: f"sk-ibsecretstest-{var.lower()}-{secrets.token_hex(8)}"
                 for var in ("OPENAI_API_KEY", "IB_LLM_API_KEY")}
HUB_TOKEN = "hub-api-token-" + secrets.token_hex(8)  # as a hub gives a managed service
ENV_MARKER = ("IB_SECRETS_TEST_MARKER", "inherited-" + secrets.token_hex(4))
MESSAGE_MARKER = "zebra-" + secrets.token_hex(4)
INTERVIEWER = "secrets-test-interviewer-token"


@dataclass
class Response:
    role: str
    verb: str
    template: str  # the path as the OpenAPI document writes it
    status: int
    text: str  # headers and body

    @property
    def label(self) -> str:
        return f"{self.role} {self.verb} {self.template} -> {self.status}"

    def has(self, needle: str) -> bool:
        return needle in self.text


@dataclass
class Walk:
    responses: list[Response] = field(default_factory=list)
    doc: dict = field(default_factory=dict)  # the OpenAPI document
    issued: dict[str, Response] = field(default_factory=dict)  # candidate token -> its issue
    log: str = ""
    db_rows: str = ""
    db_bytes: bytes = b""
    kernel_env: dict[str, str] = field(default_factory=dict)
    service_environ: str = ""  # /proc/<service pid>/environ, read while it ran
    service_cmdline: str = ""
    secrets_dir: Path | None = None


def start_keyed_service(fake_llm_url: str, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    """`ib serve` with the fake provider keys in its environment and debug logging on."""
    config = workdir / "debug_config.py"
    config.write_text('c.Application.log_level = "DEBUG"\n')
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    env.update(PROVIDER_KEYS, IB_TOKEN=INTERVIEWER, OPENAI_LOG="debug",
               JUPYTERHUB_API_TOKEN=HUB_TOKEN)
    env[ENV_MARKER[0]] = ENV_MARKER[1]
    port = free_port()
    log_path = workdir / "service.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ib_extension.cli", "serve", "--port", str(port),
             "--data-dir", str(workdir / "data"), "--llm-base-url", fake_llm_url,
             "--config", str(config)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/ib/api/health", proc)
    return proc, url, log_path


class Recorder:
    """Calls the service and keeps every response. Each role has its own client: Jupyter
    answers a token-authenticated request with a login cookie, which must not carry over."""

    def __init__(self, url: str, walk: Walk):
        self.url = url
        self.clients: dict[str, httpx.Client] = {}
        self.walk = walk
        self.challenge_id = ""
        self.event_id = ""
        self.model_id = ""

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def call(self, role: str, token: str | None, verb: str, template: str, body=None,
             params=None, session_id: str = "") -> httpx.Response:
        headers = {}
        if role == "interviewer":
            headers["Authorization"] = f"token {token}"
        elif role.startswith("candidate"):
            headers["Authorization"] = f"Bearer {token}"
        path = template.replace("{session_id}", session_id).replace(
            "{challenge_id}", self.challenge_id).replace("{event_id}", self.event_id).replace(
            "{model_id}", self.model_id)
        if role not in self.clients:
            self.clients[role] = httpx.Client(base_url=self.url, timeout=30)
        r = self.clients[role].request(verb.upper(), path, json=body, params=params, headers=headers)
        text = "\n".join(f"{k}: {v}" for k, v in r.headers.items()) + "\n\n" + r.text
        response = Response(role, verb.upper(), template, r.status_code, text)
        self.walk.responses.append(response)
        issued = r.json() if r.status_code < 300 and "candidate_token" in r.text else None
        if isinstance(issued, dict) and "candidate_token" in issued:  # not the OpenAPI document
            self.walk.issued[issued["candidate_token"]] = response
        return r


def sample_body(verb: str, template: str, model: str):
    """A valid body for each operation that takes one, so the walk reaches its success path."""
    bodies = {
        ("post", "/ib/api/sessions"): {
            "candidate_name": "Walk Created", "time_limit_seconds": 600, "token_budget": 2000,
            "challenge_text": "Write `add(a, b)`."},
        ("post", "/ib/v1/chat/completions"): {
            "model": model, "messages": [{"role": "user", "content": f"Sort {MESSAGE_MARKER}?"}]},
        ("post", "/ib/v1/responses"): {"model": model, "input": f"Sort {MESSAGE_MARKER}?"},
        ("post", "/ib/api/me/events"): {"type": "activity.paste", "payload": {"chars": 12}},
        ("post", "/ib/api/me/submit"): {"notebook": {
            "nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}},
        ("post", "/ib/api/sessions/{session_id}/extend-time"): {"seconds": 120},
        ("post", "/ib/api/sessions/{session_id}/extend-tokens"): {"tokens": 500},
    }
    return bodies.get((verb, template))


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    """(verb, path template, operation) in document order; what ends a session goes last."""
    ops = [(verb, path, op) for path, item in doc["paths"].items() for verb, op in item.items()]
    ending = ("/end", "/submit")
    return sorted(ops, key=lambda o: o[1].endswith(ending))


def create_session(rec: Recorder, name: str) -> dict:
    r = rec.call("interviewer", INTERVIEWER, "post", "/ib/api/sessions", {
        "candidate_name": name, "time_limit_seconds": 1800, "token_budget": 20000,
        "challenge_text": "Write `fizzbuzz(n)`."})
    assert r.status_code == 201, r.text
    return r.json()


def walk_openapi(rec: Recorder) -> None:
    """Call every operation of the OpenAPI document as every role."""
    mine, other = create_session(rec, "Candidate Carla"), create_session(rec, "Other Olga")
    # Interviewers act on a session no candidate touches, so that `start` can succeed
    # and the candidate's own session stays usable.
    watched = create_session(rec, "Watched Walter")
    events = rec.call("interviewer", INTERVIEWER, "get",
                      f"/ib/api/sessions/{watched['id']}/events").json()["events"]
    rec.event_id = str(events[0]["id"])
    model = rec.model_id = mine["session"]["model"]
    roles = {"anonymous": None, "candidate": mine["candidate_token"],
             "candidate-of-other": other["candidate_token"], "interviewer": INTERVIEWER}
    library = rec.call("interviewer", INTERVIEWER, "get", "/ib/api/challenges")
    if library.status_code == 200 and library.json()["challenges"]:
        rec.challenge_id = library.json()["challenges"][0]["id"]

    doc = rec.walk.doc = rec.call("anonymous", None, "get", "/ib/api/openapi.json").json()
    for verb, template, op in operations(doc):
        params = {p["name"]: 0 for p in op.get("parameters", [])
                  if p["in"] == "query" and p["name"] in ("cursor", "timeout")}
        for role, token in roles.items():
            sid = watched["id"] if role == "interviewer" else mine["id"]
            rec.call(role, token, verb, template, sample_body(verb, template, model),
                     params or None, session_id=sid)


def call_what_the_walk_misses(rec: Recorder) -> None:
    """A streamed reply, a provider error, and each feed read from its very beginning."""
    fresh = create_session(rec, "Streaming Sam")
    token, model = fresh["candidate_token"], fresh["session"]["model"]
    streamed = rec.call("candidate", token, "post", "/ib/v1/chat/completions", {
        "model": model, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Explain sorting."}]})
    assert streamed.status_code == 200, streamed.text
    failed = rec.call("candidate", token, "post", "/ib/v1/chat/completions", {
        "model": model, "messages": [{"role": "user", "content": "Hi [[fault:500]]"}]})
    assert failed.status_code == 502, failed.text
    from_start = {"cursor": 0, "timeout": 0}
    rec.call("interviewer", INTERVIEWER, "get", "/ib/api/feed", params=from_start)
    rec.call("candidate", token, "get", "/ib/api/me/feed", params=from_start)


@pytest.fixture(scope="module")
def walk(fake_llm_url, tmp_path_factory) -> Walk:
    workdir = tmp_path_factory.mktemp("secrets")
    proc, url, log_path = start_keyed_service(fake_llm_url, workdir)
    result = Walk()
    rec = Recorder(url, result)
    try:
        walk_openapi(rec)
        call_what_the_walk_misses(rec)
        result.kernel_env = kernel_environment(rec, proc)
        result.service_environ = Path(f"/proc/{proc.pid}/environ").read_bytes().decode()
        result.service_cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        result.secrets_dir = workdir / "data" / "secrets"
    finally:
        rec.close()
        stop(proc)
    result.log = log_path.read_text()
    db = workdir / "data" / "ib.duckdb"
    result.db_bytes = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.is_file())
    result.db_rows = all_rows_as_text(db)
    return result


def kernel_environment(rec: Recorder, service: subprocess.Popen) -> dict[str, str]:
    """Start a kernel through the service's Jupyter API; read its process's environment."""
    r = rec.call("interviewer", INTERVIEWER, "post", "/api/kernels", {})
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]

    def kernel_process():
        for p in psutil.Process(service.pid).children(recursive=True):
            try:
                if any(kernel_id in part for part in p.cmdline()):
                    return p
            except psutil.NoSuchProcess:
                continue
        return None

    proc = wait_for(kernel_process, f"a process for kernel {kernel_id}")
    raw = Path(f"/proc/{proc.pid}/environ").read_bytes()
    rec.call("interviewer", INTERVIEWER, "delete", f"/api/kernels/{kernel_id}")
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def all_rows_as_text(db: Path) -> str:
    """Every row of every table of the (closed) DuckDB file, as text."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()]
        return "\n".join(repr(row) for t in tables
                         for row in con.execute(f'SELECT * FROM "{t}"').fetchall())
    finally:
        con.close()


def token_hashes(walk: Walk) -> list[str]:
    return [hashlib.sha256(t.encode()).hexdigest() for t in walk.issued]


# ---- the walk reached what it claims to search ---------------------------------------
# Operations the walk calls but whose success needs more than it sets up.
NOT_REACHED = {
    ("POST", "/ib/api/challenges"): "needs a challenge definition",
    ("POST", "/ib/api/sessions/{session_id}/grade"): "needs a submitted, gradable challenge",
    # JupyterHub only: their success paths run in tests/test_hub.py on a real hub.
    ("POST", "/ib/api/sessions/{session_id}/link"): "needs the service to run on JupyterHub",
    ("POST", "/ib/api/hub/links/redeem"): "only the hub may call it",
    ("POST", "/ib/api/hub/spawn"): "only the hub may call it",
    ("POST", "/ib/api/me/hand-in"): "needs a session that has ended (tests/test_hand_in.py)",
}


def test_walk_called_every_operation_as_every_role(walk):
    expected = {(verb.upper(), path) for path, item in walk.doc["paths"].items() for verb in item}
    assert len(expected) > 20
    for role in ("anonymous", "candidate", "candidate-of-other", "interviewer"):
        called = {(r.verb, r.template) for r in walk.responses if r.role == role}
        assert expected - called == set(), role


def test_walk_reached_the_success_path_of_almost_every_operation(walk):
    expected = {(verb.upper(), path) for path, item in walk.doc["paths"].items() for verb in item}
    reached = {(r.verb, r.template) for r in walk.responses if r.status < 300}
    assert expected - reached - NOT_REACHED.keys() == set()


# ---- the provider key ----------------------------------------------------------------
def leaks(text: str) -> list[str]:
    return [var for var, key in PROVIDER_KEYS.items() if key in text]


def test_provider_key_is_in_no_http_response(walk):
    assert len(walk.responses) > 50
    leaked = [(r.label, leaks(r.text)) for r in walk.responses if leaks(r.text)]
    assert not leaked


def test_provider_key_is_in_no_log_line(walk):
    assert "ib service: data in" in walk.log  # the log was captured, at debug level
    assert "[D " in walk.log
    assert [line for line in walk.log.splitlines() if leaks(line)] == []


def test_provider_key_is_in_no_row_and_no_byte_of_the_database(walk):
    assert MESSAGE_MARKER in walk.db_rows  # the rows were read, messages included
    assert leaks(walk.db_rows) == []
    assert not [var for var, key in PROVIDER_KEYS.items() if key.encode() in walk.db_bytes]


def test_provider_key_is_not_in_a_kernel_the_service_starts(walk):
    assert walk.kernel_env.get(ENV_MARKER[0]) == ENV_MARKER[1]  # inherited the service's env
    assert [(name, leaks(value)) for name, value in walk.kernel_env.items()
            if leaks(value)] == []


# ---- the service's own process --------------------------------------------------------
def all_secrets() -> dict[str, str]:
    return {**PROVIDER_KEYS, "IB_TOKEN": INTERVIEWER, "JUPYTERHUB_API_TOKEN": HUB_TOKEN}


def test_service_process_environment_holds_no_secret(walk):
    """`ib serve` re-executed itself without them: /proc/<pid>/environ shows the
    environment a process started with, whatever it later removes."""
    assert ENV_MARKER[1] in walk.service_environ  # the environment was read
    assert [name for name, value in all_secrets().items()
            if value in walk.service_environ] == []
    assert "IB_TOKEN=" not in walk.service_environ


def test_service_command_line_holds_no_secret(walk):
    assert "ib_extension.cli.serve" in walk.service_cmdline  # every local user can read it
    assert [name for name, value in all_secrets().items()
            if value in walk.service_cmdline] == []


def test_a_kernel_the_service_starts_finds_the_interviewer_token_by_path_only(walk):
    assert [name for name, value in walk.kernel_env.items()
            if any(secret in value for secret in all_secrets().values())] == []
    token_file = Path(walk.kernel_env["IB_TOKEN_FILE"])
    assert token_file.read_text() == INTERVIEWER
    assert walk.kernel_env["IB_URL"].startswith("http://127.0.0.1:")


def test_secrets_live_in_private_files_of_the_data_dir(walk):
    folder = walk.secrets_dir
    assert folder.stat().st_mode & 0o777 == 0o700
    assert folder.parent.stat().st_mode & 0o777 == 0o700  # the data dir, DuckDB file and all
    files = {p.name: p for p in folder.iterdir()}
    assert set(files) == {"llm_api_key", "interviewer_token", "jupyterhub_api_token"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files.values())
    assert files["llm_api_key"].read_text() == PROVIDER_KEYS["OPENAI_API_KEY"]  # the first set
    assert files["jupyterhub_api_token"].read_text() == HUB_TOKEN


# ---- candidate tokens ----------------------------------------------------------------
def test_candidate_tokens_appear_only_where_they_are_issued(walk):
    issuing = {("POST", "/ib/api/sessions"), ("POST", "/ib/api/sessions/{session_id}/token")}
    assert {(r.verb, r.template) for r in walk.issued.values()} == issuing
    for r in walk.responses:
        shown = [t for t in walk.issued if r.has(t)]
        if r.status < 300 and (r.verb, r.template) in issuing:
            assert len(shown) == 1 and walk.issued[shown[0]] is r, r.label
        else:
            assert not shown, f"{r.label} returned a candidate token"


def test_candidate_token_hashes_are_never_returned(walk):
    stored = [h for h in token_hashes(walk) if h in walk.db_rows]
    assert stored, "the database should hold the tokens' hashes (and so be searchable here)"
    leaked = [r.label for r in walk.responses for h in stored if r.has(h)]
    assert not leaked


def test_candidate_tokens_are_not_stored_in_the_database(walk):
    assert not [t for t in walk.issued if t in walk.db_rows]
