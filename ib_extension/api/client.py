"""A small client for the ib service's REST API, sync and async (httpx).

The CLI, the dashboards' kernels and the tests use it. Interviewers authenticate with the
service token (`Authorization: token ...`), candidates with their session token
(`Authorization: Bearer ...`). Errors raise IBClientError carrying the service's code and
sentence.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx


class IBClientError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


def _result(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        try:
            err = r.json()["error"]
            raise IBClientError(r.status_code, err.get("code", "error"), err.get("message", r.text))
        except (ValueError, KeyError, TypeError):
            raise IBClientError(r.status_code, "http_error", r.text[:200] or r.reason_phrase) from None
    return r.json()


def _seg(value: str) -> str:
    """One path segment, percent-encoded: an id that holds `/` or `..` (from a page's URL,
    say) names nothing else on the service."""
    return quote(str(value), safe="").replace(".", "%2E")  # no "." or ".." segments either


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class _Api:
    """Every call, written once; subclasses decide whether `_call` blocks or awaits."""

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        raise NotImplementedError

    # public
    def health(self):
        return self._call("GET", "/ib/api/health")

    # interviewer
    def models(self):
        return self._call("GET", "/ib/api/models")

    def create_session(self, *, idempotency_key: str | None = None, **body: Any):
        """With `idempotency_key`, sending the same body again returns the same session."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._call("POST", "/ib/api/sessions", json=_clean(body), headers=headers)

    def list_sessions(self, *, status: str | None = None, q: str | None = None,
                      challenge_id: str | None = None, candidate: str | None = None,
                      date_from: str | None = None, date_to: str | None = None,
                      min_score: float | None = None, max_score: float | None = None,
                      limit: int = 50, offset: int = 0):
        return self._call("GET", "/ib/api/sessions", params=_clean(
            {"status": status, "q": q, "challenge_id": challenge_id, "candidate": candidate,
             "from": date_from, "to": date_to, "min_score": min_score, "max_score": max_score,
             "limit": limit, "offset": offset}))

    def session(self, session_id: str):
        return self._call("GET", f"/ib/api/sessions/{_seg(session_id)}")

    def action(self, session_id: str, action: str):
        """start, pause, resume, lock, unlock or end."""
        return self._call("POST", f"/ib/api/sessions/{_seg(session_id)}/{_seg(action)}")

    def extend_time(self, session_id: str, seconds: int):
        return self._call("POST", f"/ib/api/sessions/{_seg(session_id)}/extend-time",
                          json={"seconds": seconds})

    def extend_tokens(self, session_id: str, tokens: int):
        return self._call("POST", f"/ib/api/sessions/{_seg(session_id)}/extend-tokens",
                          json={"tokens": tokens})

    def rotate_token(self, session_id: str):
        return self._call("POST", f"/ib/api/sessions/{_seg(session_id)}/token")

    def new_link(self, session_id: str):
        """On JupyterHub: a new candidate link (the old one stops working)."""
        return self._call("POST", f"/ib/api/sessions/{session_id}/link")

    def messages(self, session_id: str):
        return self._call("GET", f"/ib/api/sessions/{_seg(session_id)}/messages")

    def events(self, session_id: str, types: str | None = None):
        return self._call("GET", f"/ib/api/sessions/{_seg(session_id)}/events",
                          params=_clean({"type": types}))

    def event(self, session_id: str, event_id: int):
        """One event with its whole payload (the feed gives big ones as `payload_url`)."""
        return self._call("GET", f"/ib/api/sessions/{_seg(session_id)}/events/{_seg(str(event_id))}")

    def grade(self, session_id: str):
        return self._call("POST", f"/ib/api/sessions/{_seg(session_id)}/grade")

    def challenges(self, *, q: str | None = None, category: str | None = None,
                   difficulty: str | None = None, tag: str | None = None):
        return self._call("GET", "/ib/api/challenges", params=_clean(
            {"q": q, "category": category, "difficulty": difficulty, "tag": tag}))

    def challenge(self, challenge_id: str):
        return self._call("GET", f"/ib/api/challenges/{_seg(challenge_id)}")

    def add_challenge(self, *, source: str | None = None, **fields: Any):
        return self._call("POST", "/ib/api/challenges",
                          json={"source": source} if source is not None else fields)

    def record(self, session_id: str):
        return self._call("GET", f"/ib/api/sessions/{_seg(session_id)}/record")

    def feed(self, cursor: int | None = None, *, timeout: int = 25, epoch: str | None = None,
             session_id: str | None = None):
        return self._call("GET", "/ib/api/feed", params=_clean(
            {"cursor": cursor, "timeout": timeout if cursor is not None else None,
             "epoch": epoch, "session_id": session_id}), timeout=timeout + 10)

    # candidate
    def me(self):
        return self._call("GET", "/ib/api/me")

    def my_messages(self):
        return self._call("GET", "/ib/api/me/messages")

    def my_feed(self, cursor: int | None = None, *, timeout: int = 25, epoch: str | None = None):
        return self._call("GET", "/ib/api/me/feed", params=_clean(
            {"cursor": cursor, "timeout": timeout if cursor is not None else None,
             "epoch": epoch}), timeout=timeout + 10)

    def activity(self, type_: str, payload: dict[str, Any]):
        return self._call("POST", "/ib/api/me/events", json={"type": type_, "payload": payload})

    def submit(self, notebook: dict[str, Any]):
        return self._call("POST", "/ib/api/me/submit", json={"notebook": notebook})


def _http_settings(url: str | None, token: str | None, scheme: str) -> tuple[str, dict]:
    """The base URL and auth header, defaulting to IB_URL and IB_TOKEN, or the file
    IB_TOKEN_FILE names (how `ib serve` hands its dashboards' kernels the token)."""
    url = url or os.environ.get("IB_URL", "")
    token = token or os.environ.get("IB_TOKEN", "") or _token_from_file()
    if not url:
        raise ValueError("No service URL: pass --url or set IB_URL.")
    if scheme not in ("token", "bearer"):
        raise ValueError("scheme is 'token' (interviewer) or 'bearer' (candidate)")
    return url.rstrip("/"), {"Authorization": f"{'Bearer' if scheme == 'bearer' else 'token'} {token}"}


TOKEN_FILE_ENV = "IB_TOKEN_FILE"


def _token_from_file() -> str:
    path = os.environ.get(TOKEN_FILE_ENV)
    if not path:
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


class IBClient(_Api):
    def __init__(self, url: str | None = None, token: str | None = None, *,
                 scheme: str = "token", timeout: float = 30.0):
        self.url, headers = _http_settings(url, token, scheme)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return _result(self._http.request(method, path, **kw))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IBClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncIBClient(_Api):
    def __init__(self, url: str | None = None, token: str | None = None, *,
                 scheme: str = "token", timeout: float = 30.0):
        self.url, headers = _http_settings(url, token, scheme)
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        return _result(await self._http.request(method, path, **kw))

    async def aclose(self) -> None:
        await self._http.aclose()
