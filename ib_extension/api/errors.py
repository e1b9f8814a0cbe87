"""One error shape for the whole API (OpenAI-compatible, so the SDK raises typed errors).

Every 4xx/5xx body is ``{"error": {"code", "message", "type", "param"}}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class _Kind:
    status: int
    type: str
    retryable: bool = False


# code -> HTTP status, OpenAI error type, whether a retry can help.
KINDS: dict[str, _Kind] = {
    "budget_exhausted": _Kind(429, "insufficient_quota"),
    "quota_exceeded": _Kind(429, "insufficient_quota"),
    # tokens left, but held by the session's replies in flight: waiting longer can help
    "budget_reserved": _Kind(429, "rate_limit_error", retryable=True),
    "time_up": _Kind(403, "session_error"),
    "session_paused": _Kind(409, "session_error"),
    "session_locked": _Kind(403, "session_error"),
    "session_ended": _Kind(403, "session_error"),
    "link_in_use": _Kind(409, "session_error"),
    "rate_limited": _Kind(429, "rate_limit_error", retryable=True),
    "message_too_long": _Kind(400, "invalid_request_error"),
    "invalid_request": _Kind(400, "invalid_request_error"),
    "unauthorized": _Kind(401, "authentication_error"),
    "forbidden": _Kind(403, "permission_error"),
    "not_found": _Kind(404, "invalid_request_error"),
    "method_not_allowed": _Kind(405, "invalid_request_error"),
    "conflict": _Kind(409, "invalid_request_error"),
    "payload_too_large": _Kind(413, "invalid_request_error"),
    "provider_error": _Kind(502, "server_error", retryable=True),
    # The candidate's own server could not reach the ib service.
    "service_unreachable": _Kind(502, "server_error", retryable=True),
    "internal_error": _Kind(500, "server_error", retryable=True),
}


class IBError(Exception):
    """An error a client can read: a code from KINDS and one plain sentence."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ):
        if code not in KINDS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or KINDS[code].status
        self.param = param
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return KINDS[self.code].retryable

    def body(self) -> dict:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "type": KINDS[self.code].type,
                "param": self.param,
            }
        }

    def headers(self) -> dict[str, str]:
        """Headers that tell clients (the openai SDK among them) whether to retry."""
        if self.retry_after is not None:  # rounded up: retrying after it must be able to succeed
            return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}
        if not self.retryable:
            return {"x-should-retry": "false"}
        return {}


def status_code_error(status: int, reason: str | None = None) -> IBError:
    """Map a bare HTTP status (tornado's own 404/405/413...) onto our shape."""
    by_status = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large"}
    code = by_status.get(status, "invalid_request" if 400 <= status < 500 else "internal_error")
    sentence = reason or {
        404: "There is nothing at this address.",
        405: "This address does not accept that method.",
    }.get(status, "The request could not be handled.")
    return IBError(code, sentence, status=status)
