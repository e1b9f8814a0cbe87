"""Request bodies, validated strictly: wrong types and unknown fields are refused."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from . import fast_json
from .errors import IBError

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
SESSION_ID = re.compile(r"s_[0-9a-f]{12}")  # what the service's ids look like (sessions.new_id)
MAX_JSON_DEPTH = 64  # nesting of arrays and objects in a body; notebooks need about 6


def _whole(value: Any) -> Any:
    """JSON has one number type: 5000.0 is the integer 5000 (JSON Schema agrees)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer field that takes 5000.0 too (strict models refuse any other float or string).
Whole = Annotated[int, BeforeValidator(_whole)]
NOT_BLANK = {"pattern": r"\S"}  # documented: something besides spaces (the check says why)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateSession(Body):
    """A session gets its challenge from the library (`challenge_id`) or as text
    (`challenge_text`): exactly one of them."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["challenge_id"], "properties": {"challenge_id": {"type": "string"},
                                                      "challenge_text": {"type": "null"}}},
        {"required": ["challenge_text"], "properties": {"challenge_id": {"type": "null"},
                                                        "challenge_text": {"type": "string"}}},
    ]})
    candidate_name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    candidate_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    time_limit_seconds: Whole = Field(ge=60, le=24 * 3600)
    token_budget: Whole = Field(ge=100, le=10_000_000)
    model: str | None = Field(default=None, max_length=200)
    challenge_id: str | None = Field(default=None, max_length=200)
    challenge_title: str | None = Field(default=None, max_length=200)
    challenge_text: str | None = Field(default=None, max_length=100_000, json_schema_extra=NOT_BLANK)
    assist_policy: str | None = Field(default=None, max_length=100)

    @field_validator("candidate_name")
    @classmethod
    def _name_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class ExtendTime(Body):
    seconds: Whole = Field(ge=1, le=24 * 3600)


class ExtendTokens(Body):
    tokens: Whole = Field(ge=1, le=10_000_000)


class Activity(Body):
    type: Literal[
        "activity.cell_executed", "activity.snapshot", "activity.copy", "activity.paste"
    ]
    payload: dict[str, Any] = Field(default_factory=dict)


class Submit(Body):
    notebook: dict[str, Any]
    path: str | None = Field(default=None, max_length=1000)  # where it was in the workspace


class HandIn(Body):
    """The final notebook, sent after the end by the candidate's server (Service.hand_in)."""

    notebook: dict[str, Any]
    path: str | None = Field(default=None, max_length=1000)


class NewChallenge(BaseModel):
    """Either the text of a challenge file, or its fields (checked by the library)."""

    model_config = ConfigDict(extra="allow")
    source: str | None = Field(default=None, max_length=200_000)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or a 400 that says what is wrong with it."""
    try:
        data = fast_json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise IBError("invalid_request", f"The request body is not valid JSON ({e}).") from e
    except RecursionError:
        data = None  # nested past what Python's parser takes: deeper than we allow anyway
    else:
        if _depth_within(data, MAX_JSON_DEPTH):
            return data
    raise IBError("invalid_request", f"The request body nests arrays and objects more than "
                  f"{MAX_JSON_DEPTH} levels deep.")


def _depth_within(data: Any, limit: int) -> bool:
    """Whether `data` nests containers at most `limit` deep (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        if children and depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return True


def parse(model: type[Body] | type[BaseModel], data: Any):
    """Validate `data`, or raise a 400 whose sentence names the field and the problem."""
    if not isinstance(data, dict):
        raise IBError("invalid_request", "The request body must be a JSON object.")
    bad_text = _invalid_text_at(data)
    if bad_text is not None:
        raise IBError("invalid_request",
                      f"Field '{bad_text}' holds invalid text (a lone UTF-16 surrogate); "
                      "send valid Unicode.", param=bad_text)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = _where(err["loc"], data) or "body"
        if err["type"] == "extra_forbidden":
            sentence = f"Unknown field '{where}'."
        elif err["type"] == "missing":
            sentence = f"Field '{where}' is required."
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx") or {}
            key = str(ctx.get("discriminator", "type")).strip("'")
            where = f"{where}.{key}"
            expected = ctx.get("expected_tags")
            sentence = (f"Field '{where}' must be one of {expected}." if expected
                        else f"Field '{where}' is required.")
        else:
            sentence = f"Field '{where}': {err['msg']}."
        raise IBError("invalid_request", sentence, param=where) from None


def _where(loc: tuple, data: Any) -> str:
    """The dotted path of `loc` in `data`, without the union tags pydantic inserts."""
    path, here = [], data
    for i, step in enumerate(loc):
        if isinstance(here, dict) and step in here:
            here = here[step]
        elif isinstance(here, list) and isinstance(step, int) and 0 <= step < len(here):
            here = here[step]
        elif i < len(loc) - 1:
            continue  # a union member's tag ('text', 'user'...), not part of the input
        path.append(str(step))
    return ".".join(path)


def _invalid_text_at(data: Any) -> str | None:
    """The path of the first string (key or value) that is not valid Unicode, if any.

    JSON may escape lone surrogates (\\ud800) that no UTF-8 writer accepts later: the
    database, tiktoken and the provider call would fail after a reservation was taken.
    """
    stack: list[tuple[str, Any]] = [("", data)]  # iterative: nesting depth is not ours to trust
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not _valid(value):
                return where or "body"
        elif isinstance(value, dict):
            for k, v in value.items():
                path = f"{where}.{k}" if where else str(k)
                if not _valid(k):
                    return where or "body"
                stack.append((path, v))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(value))
    return None


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
