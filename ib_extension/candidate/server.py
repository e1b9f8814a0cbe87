"""The candidate role: a candidate's JupyterLab bound to one interview session.

This server holds only the session's candidate token (never the provider key, the
database or the interviewer's token). It re-serves the candidate API of the ib service
under the same paths (`/ib/v1/chat/completions`, `/ib/api/me...`), authenticated by the
Jupyter session of the candidate's browser and forwarded with `Authorization: Bearer
<candidate token>`. So the chat panel's front-end reaches the service same-origin, with
no token in the page, and keeps working while the candidate's kernel is busy. Server-sent
events are streamed through unbuffered; closing the browser's request closes the upstream
one, which is how the panel's Stop button stops a reply.

It also records notebook snapshots on save (a contents-manager post-save hook) and offers
`POST /ib/candidate/submit {"path"}`, which sends the saved notebook as the final one.

This activity reporting runs in the candidate's own environment, so a determined
candidate can disable it; the service enforces budget, time and state on its own and
never relies on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import httpx
import nbformat
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web
from tornado.iostream import StreamClosedError

from ..api.errors import IBError

log = logging.getLogger("ib_extension.candidate.server")

# The service routes a candidate may reach, re-served on the candidate's server. (The
# hand-in is not among them: this server hands the notebook in itself, after the end.)
SERVER_ONLY = ("/ib/api/me/hand-in",)
FORWARDED = (r"/(ib/v1/(?:models(?:/[^/]+)?|chat/completions|responses)"
             r"|ib/api/me(?:/(?:messages|feed|events|submit|opened))?)")
# Response headers worth passing on (the error shape's retry hints, SSE framing).
PASSED_HEADERS = ("Content-Type", "Cache-Control", "Retry-After", "x-should-retry")
# Snapshots above this size are sent without outputs (the events route takes 5 MB).
SNAPSHOT_MAX_BYTES = 4_000_000


class Upstream:
    """The candidate's connection to the ib service (one pooled async client)."""

    def __init__(self, service_url: str, session_token: str):
        if not service_url or not session_token:
            raise RuntimeError("The candidate role needs the service URL and the session token: "
                               "set IBExtension.service_url/session_token or IB_SERVICE_URL/"
                               "IB_SESSION_TOKEN (`ib lab` does this for you).")
        self.url = service_url.rstrip("/")
        # Long-polls last up to 60 s and replies may pause between tokens: generous reads.
        self.http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {session_token}"},
            timeout=httpx.Timeout(10.0, read=180.0), follow_redirects=False)

    async def post_json(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body)


class ForwardHandler(JupyterHandler):
    """Forward one candidate API call to the service, streaming the answer through."""

    def initialize(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._task: asyncio.Task | None = None

    def on_connection_close(self) -> None:
        # The browser went away (or pressed Stop): drop the upstream request too.
        if self._task is not None:
            self._task.cancel()

    @web.authenticated
    async def get(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    async def post(self, path: str) -> None:
        await self._forward(path)

    async def _forward(self, path: str) -> None:
        self._task = asyncio.ensure_future(self._relay(path))
        try:
            await self._task
        except asyncio.CancelledError:
            if self.request.connection.stream.closed():
                return  # the browser left; nothing to answer
            raise

    async def _relay(self, path: str) -> None:
        req = self.upstream.http.build_request(
            self.request.method, "/" + path,
            params=[(k, v.decode()) for k, vs in self.request.query_arguments.items() for v in vs],
            content=self.request.body or None,
            # identity: chunks are relayed as they come, so they must not be compressed
            headers={"Content-Type": self.request.headers.get("Content-Type", "application/json"),
                     "Accept-Encoding": "identity"})
        try:
            upstream = await self.upstream.http.send(req, stream=True)
        except httpx.HTTPError as e:
            log.warning("ib service unreachable: %s", e)
            self._service_unreachable()
            return
        try:
            self.set_status(upstream.status_code)
            for name in PASSED_HEADERS:
                if name in upstream.headers:
                    self.set_header(name, upstream.headers[name])
            async for chunk in upstream.aiter_raw():
                self.write(chunk)
                await self.flush()  # unbuffered: each SSE line reaches the browser at once
        except StreamClosedError:
            return  # the browser left mid-answer; closing upstream (below) tells the service
        except httpx.HTTPError as e:
            log.warning("ib service dropped a %s %s: %s", self.request.method, path, e)
        finally:
            await upstream.aclose()
        self.finish()

    def _service_unreachable(self) -> None:
        refuse(self, IBError("service_unreachable", "The interview service cannot be reached "
                             "right now; the panel will keep trying."))


def refuse(handler: JupyterHandler, err: IBError) -> None:
    """Answer with the service's one error shape, so the panel shows the sentence."""
    handler.set_status(err.status)
    handler.set_header("Content-Type", "application/json")
    for name, value in err.headers().items():
        handler.set_header(name, value)
    handler.finish(json.dumps(err.body()))


class SubmitHandler(APIHandler):
    """Submit the saved notebook at `path` (relative to the workspace) as the final one."""

    def initialize(self, upstream: Upstream) -> None:
        self.upstream = upstream

    @web.authenticated
    async def post(self) -> None:
        try:
            await self._submit()
        except IBError as err:
            refuse(self, err)

    async def _submit(self) -> None:
        try:
            path = json.loads(self.request.body or b"{}")["path"]
            if not isinstance(path, str) or not path.endswith(".ipynb"):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise IBError("invalid_request", 'Send {"path": "<notebook>.ipynb"} to submit a '
                          "notebook.", param="path") from None
        if os.path.isabs(path):  # kernels know their notebook by absolute path
            path = os.path.relpath(os.path.realpath(path), os.path.realpath(self.serverapp.root_dir))
            if path.startswith(".."):
                raise IBError("invalid_request", "Only notebooks inside the workspace can be "
                              "submitted.", param="path")
        cm = self.contents_manager
        if not await _maybe_await(cm.file_exists(path)):
            raise IBError("not_found", f"There is no notebook at {path} to submit.")
        model = await _maybe_await(cm.get(path, content=True, type="notebook"))
        # As written on disk: without the transient "trusted" marks the model carries.
        notebook = json.loads(nbformat.writes(nbformat.from_dict(model["content"])))
        r = await self.upstream.post_json("/ib/api/me/submit", {"notebook": notebook, "path": path})
        self.set_status(r.status_code)
        self.finish(r.content)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def snapshot_payload(path: str, notebook: dict[str, Any]) -> dict[str, Any]:
    """The `activity.snapshot` payload; outputs are dropped when the notebook is too big."""
    payload = {"path": path, "reason": "save", "notebook": notebook}
    if len(json.dumps(payload)) > SNAPSHOT_MAX_BYTES:
        slim = dict(notebook, cells=[{k: v for k, v in c.items() if k != "outputs"}
                                     for c in notebook.get("cells", [])])
        payload.update(notebook=slim, outputs_dropped=True)
    return payload


def make_post_save_hook(upstream: Upstream, root_dir: str, on_save=None):
    def post_save(model: dict, os_path: str, contents_manager: Any, **_: Any) -> None:
        if model.get("type") != "notebook":
            return
        if on_save is not None:
            on_save(os_path)
        try:
            with open(os_path, encoding="utf-8") as f:
                notebook = json.load(f)
        except (OSError, ValueError) as e:
            log.warning("snapshot of %s skipped: %s", os_path, e)
            return
        rel = os.path.relpath(os_path, root_dir)
        asyncio.ensure_future(_send_snapshot(upstream, snapshot_payload(rel, notebook)))

    return post_save


async def _send_snapshot(upstream: Upstream, payload: dict[str, Any]) -> None:
    try:
        r = await upstream.post_json("/ib/api/me/events",
                                     {"type": "activity.snapshot", "payload": payload})
        if r.status_code >= 400:
            log.info("snapshot not recorded: %s", r.text[:200])
    except httpx.HTTPError as e:
        log.warning("snapshot not sent: %s", e)


def handlers(upstream: Upstream) -> list[tuple]:
    return [
        (FORWARDED, ForwardHandler, {"upstream": upstream}),
        (r"/ib/candidate/submit", SubmitHandler, {"upstream": upstream}),
    ]
