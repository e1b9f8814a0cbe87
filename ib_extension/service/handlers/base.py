"""HTTP handlers: one class per route. Each declares its operations (audience, summary,
body model) in `ops`; the base class enforces them and `routes.py` lists them, so the
OpenAPI document and the role checks come from the same declarations.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel
from tornado import web

from ... import __version__
from ...api import models
from ...api import requests as schemas
from ...api.errors import IBError, status_code_error
from .. import roles
from ..core import Service
from ..roles import PUBLIC

log = logging.getLogger("ib_extension.service.handlers.base")

VERBS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Op:
    audience: str
    summary: str
    body: type[BaseModel] | None = None
    # (name, JSON type or a whole JSON schema, description)
    query: tuple[tuple[str, str | dict[str, Any], str], ...] = ()
    headers: tuple[tuple[str, dict[str, Any], str], ...] = ()  # request headers it reads
    max_body: int | None = None  # bytes; None = the service's max_body_bytes
    success: int = 200
    response: type[BaseModel] | None = None  # the success body (api/models.py)
    streams: bool = False  # may answer text/event-stream


@web.stream_request_body
class IBHandler(APIHandler):
    """Bodies are streamed: `prepare()` runs on the headers alone, so a caller who may not
    use the route, or announces a body over its limit, is refused before any of it is
    read; past the limit, what arrives is dropped, never kept."""

    ops: ClassVar[dict[str, Op]] = {}
    _body: bytearray
    _body_limit = 0
    _body_over = 0  # bytes received past the limit (dropped)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Our roles module decides who may call what, including candidates who have no
        # Jupyter identity; so Jupyter's blanket authentication must let requests through.
        super().__init_subclass__(**kwargs)
        for verb in VERBS:
            if verb in cls.__dict__:
                setattr(cls, verb, allow_unauthenticated(cls.__dict__[verb]))

    @property
    def service(self) -> Service:
        return self.settings["ib_service"]

    @property
    def ib(self):
        """The extension app (its traits are the settings)."""
        return self.settings["ib_app"]

    async def prepare(self) -> None:
        await super().prepare()
        op = self.ops.get(self.request.method.lower())
        if op is None:
            raise IBError("method_not_allowed",
                          f"{self.request.method} is not allowed here; use "
                          f"{', '.join(m.upper() for m in self.ops)}.")
        auth = self.request.headers.get("Authorization", "")
        self.principal = roles.resolve(self.current_user, auth, self.settings.get("ib_service"),
                                       getattr(self, "ib_refused_hub_user", None))
        roles.require(self.principal, op.audience, auth)
        self.op = op
        self._body = bytearray()
        self._body_limit = op.max_body or self.ib.max_body_bytes
        announced = self.request.headers.get("Content-Length")
        if announced and announced.isdigit() and int(announced) > self._body_limit:
            raise self._too_large(int(announced))

    def data_received(self, chunk: bytes) -> None:
        if self._body_over or len(self._body) + len(chunk) > self._body_limit:
            self._body_over += len(chunk)
        else:
            self._body += chunk

    def _too_large(self, size: int) -> IBError:
        return IBError("payload_too_large", f"The request body is {size} bytes; the limit "
                       f"here is {self._body_limit}.")

    @property
    def raw_body(self) -> bytearray:
        if self._body_over:
            raise self._too_large(len(self._body) + self._body_over)
        return self._body

    def check_xsrf_cookie(self) -> None:
        # XSRF guards an ambient credential, the interviewer's login cookie. Exempt are a
        # request whose own header authenticated it (a candidate token naming a session;
        # Jupyter exempts its own token) and one with no credential at all (refused
        # with a 401 by the roles); a header that authenticates nothing exempts nothing.
        if roles.candidate_session(self.request.headers.get("Authorization", ""),
                                   self.settings.get("ib_service")) is not None:
            return None
        if getattr(self, "_jupyter_current_user", "unresolved") is None:
            return None
        return super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, IBError):
            err = exc
        elif isinstance(exc, web.HTTPError):
            err = status_code_error(exc.status_code, exc.log_message)
        else:
            err = IBError("internal_error", "Something went wrong in the service; it has been logged.")
        self.set_status(err.status)
        for k, v in err.headers().items():
            self.set_header(k, v)
        self.finish(json.dumps(err.body()))
        if exc is not None:
            # The traceback holds the frames that refused a request, and their locals its
            # (possibly megabytes of) body: let them go now, not at the next GC cycle.
            traceback.clear_frames(exc.__traceback__)

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, IBError):
            self.log.info("%s %s -> %d %s", self.request.method, self.request.path,
                          value.status, value.code)
        else:
            super().log_exception(typ, value, tb)

    # ---- helpers -----------------------------------------------------------------
    def body(self, model: type[BaseModel]):
        data = schemas.parse_json(self.raw_body)
        self._body = bytearray()  # parsed: the raw bytes are not needed any more
        return schemas.parse(model, data)

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.get_query_argument(name, default)

    def int_query(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise IBError("invalid_request", f"Query parameter '{name}' must be an integer.",
                          param=name) from None
        if not lo <= value <= hi:
            raise IBError("invalid_request", f"Query parameter '{name}' must be between {lo} and {hi}.",
                          param=name)
        return value

    def float_query(self, name: str) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            raise IBError("invalid_request", f"Query parameter '{name}' must be a number.",
                          param=name) from None

    def date_query(self, name: str, *, end: bool = False) -> float | None:
        """A date or ISO 8601 time as epoch seconds; a bare `to` date includes that day."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise IBError("invalid_request", f"Query parameter '{name}' must be a date like "
                          "2026-11-25 or an ISO 8601 time.", param=name) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        try:
            if end and len(raw) == 10:
                when += timedelta(days=1)
            return when.timestamp()
        except OverflowError:  # past datetime's range: after 9999-12-31 or before year 1,
            return math.inf if when.year > 1 else -math.inf  # so after or before everything

    def reply(self, data: Any, status: int | None = None) -> None:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        self.set_status(status or self.op.success)
        self.finish(json.dumps(data))

    def origin(self) -> str:
        """Scheme and host the client reached the service at (through the hub's proxy)."""
        return f"{self.request.protocol}://{self.request.host}"

    @property
    def me(self):
        return self.principal.session


class FeedBase(IBHandler):
    async def follow(self, keep) -> None:
        feed = self.service.feed
        cursor_arg = self.query("cursor")
        epoch = self.query("epoch")
        if cursor_arg is None:
            self.reply(models.FeedPage(epoch=feed.epoch, cursor=feed.cursor, reset=False, items=[]))
            return
        cursor = self.int_query("cursor", 0, 0, 2**62)
        timeout = self.int_query("timeout", 25, 0, 60)
        if epoch and epoch != feed.epoch:
            items, reset = [], True
        else:
            items, reset = await feed.wait(cursor, timeout, keep)
        self.reply(models.FeedPage(epoch=feed.epoch, cursor=feed.cursor, reset=reset, items=items))


FEED_QUERY = (("cursor", {"type": "integer", "minimum": 0, "maximum": 2**62},
               "the last cursor you got; omit to get the current one"),
              ("timeout", {"type": "integer", "minimum": 0, "maximum": 60},
               "seconds to wait for news, 0-60 (default 25)"),
              ("epoch", "string", "the epoch you got with the cursor"))


# ---- public --------------------------------------------------------------------------
class HealthHandler(IBHandler):
    ops = {"get": Op(PUBLIC, "Is the service up", response=models.Health)}

    async def get(self) -> None:
        svc = self.settings.get("ib_service")
        self.reply(models.Health(
            status="ok", version=__version__,
            sessions_active=sum(s.status == "active" for s in svc.sessions.values()) if svc else 0,
            search_index=svc.search_index if svc else "scan"))


class OpenAPIHandler(IBHandler):
    ops = {"get": Op(PUBLIC, "This API's OpenAPI 3 document")}

    async def get(self) -> None:
        from ..routes import openapi

        svc = self.settings.get("ib_service")
        library = [ch.id for ch in svc.challenges] if svc and svc.challenges else []
        self.reply(openapi(self.base_url, choices={
            ("CreateSession", "model"): list(self.ib.models),
            ("CreateSession", "assist_policy"): list(self.ib.assist_policies),
            ("CreateSession", "challenge_id"): library}))


class NotFoundHandler(IBHandler):
    """Everything under /ib/ that no route claims: a 404 in our error shape."""

    ops = {v: Op(PUBLIC, "Not found") for v in VERBS}

    async def prepare(self) -> None:
        raise IBError("not_found", f"There is nothing at {self.request.path}.")
