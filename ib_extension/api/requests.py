"""Request bodies, validated strictly: wrong types and unknown fields are refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import IBError

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateSession(Body):
    candidate_name: str = Field(min_length=1, max_length=200)
    candidate_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    time_limit_seconds: int = Field(ge=60, le=24 * 3600)
    token_budget: int = Field(ge=100, le=10_000_000)
    model: str | None = Field(default=None, max_length=200)
    challenge_id: str | None = Field(default=None, max_length=200)
    challenge_title: str | None = Field(default=None, max_length=200)
    challenge_text: str | None = Field(default=None, max_length=100_000)
    assist_policy: str | None = Field(default=None, max_length=100)

    @field_validator("candidate_name")
    @classmethod
    def _name_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class ExtendTime(Body):
    seconds: int = Field(ge=1, le=24 * 3600)


class ExtendTokens(Body):
    tokens: int = Field(ge=1, le=10_000_000)


class Activity(Body):
    type: Literal[
        "activity.cell_executed", "activity.snapshot", "activity.copy", "activity.paste"
    ]
    payload: dict[str, Any] = Field(default_factory=dict)


class Submit(Body):
    notebook: dict[str, Any]


class NewChallenge(BaseModel):
    """Either the text of a challenge file, or its fields (checked by the library)."""

    model_config = ConfigDict(extra="allow")
    source: str | None = Field(default=None, max_length=200_000)


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
