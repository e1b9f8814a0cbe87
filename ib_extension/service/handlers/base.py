"""HTTP handlers: one class per route. Each declares its operations (audience, summary,
body model) in `ops`; the base class enforces them and `routes.py` lists them, so the
OpenAPI document and the role checks come from the same declarations.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel
from tornado import web

from ... import __version__
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
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    max_body: int | None = None  # bytes; None = the service's max_body_bytes
    success: int = 200


class IBHandler(APIHandler):
    ops: ClassVar[dict[str, Op]] = {}

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

    def check_xsrf_cookie(self) -> None:
        # A header-authenticated request cannot be forged by another site's form.
        if self.request.headers.get("Authorization"):
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

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, IBError):
            self.log.info("%s %s -> %d %s", self.request.method, self.request.path,
                          value.status, value.code)
        else:
            super().log_exception(typ, value, tb)

    # ---- helpers -----------------------------------------------------------------
    def body(self, model: type[BaseModel]):
        limit = self.op.max_body or self.ib.max_body_bytes
        if len(self.request.body) > limit:
            raise IBError("payload_too_large",
                          f"The request body is {len(self.request.body)} bytes; the limit is {limit}.")
        try:
            data = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise IBError("invalid_request", f"The request body is not valid JSON ({e}).") from e
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
        if end and len(raw) == 10:
            when += timedelta(days=1)
        return when.timestamp()

    def reply(self, data: Any, status: int | None = None) -> None:
        self.set_status(status or self.op.success)
        self.finish(json.dumps(data))

    def origin(self) -> str:
        """Scheme and host the client reached the service at (through the hub's proxy)."""
        return f"{self.request.protocol}://{self.request.host}"

    def session_view(self, s) -> dict:
        return s.to_dict(self.service.now())

    @property
    def me(self):
        return self.principal.session


class FeedBase(IBHandler):
    async def follow(self, keep) -> None:
        feed = self.service.feed
        cursor_arg = self.query("cursor")
        epoch = self.query("epoch")
        if cursor_arg is None:
            self.reply({"epoch": feed.epoch, "cursor": feed.cursor, "reset": False, "items": []})
            return
        cursor = self.int_query("cursor", 0, 0, 2**62)
        timeout = self.int_query("timeout", 25, 0, 60)
        if epoch and epoch != feed.epoch:
            items, reset = [], True
        else:
            items, reset = await feed.wait(cursor, timeout, keep)
        self.reply({"epoch": feed.epoch, "cursor": feed.cursor, "reset": reset, "items": items})


FEED_QUERY = (("cursor", "integer", "the last cursor you got; omit to get the current one"),
              ("timeout", "integer", "seconds to wait for news, 0-60 (default 25)"),
              ("epoch", "string", "the epoch you got with the cursor"))


# ---- public --------------------------------------------------------------------------
class HealthHandler(IBHandler):
    ops = {"get": Op(PUBLIC, "Is the service up")}

    async def get(self) -> None:
        svc = self.settings.get("ib_service")
        self.reply({
            "status": "ok", "version": __version__,
            "sessions_active": sum(s.status == "active" for s in svc.sessions.values()) if svc else 0,
        })


class OpenAPIHandler(IBHandler):
    ops = {"get": Op(PUBLIC, "This API's OpenAPI 3 document")}

    async def get(self) -> None:
        from ..routes import openapi

        self.reply(openapi(self.base_url))


class NotFoundHandler(IBHandler):
    """Everything under /ib/ that no route claims: a 404 in our error shape."""

    ops = {v: Op(PUBLIC, "Not found") for v in VERBS}

    async def prepare(self) -> None:
        raise IBError("not_found", f"There is nothing at {self.request.path}.")
