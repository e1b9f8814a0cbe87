"""Request bodies, validated strictly: wrong types and unknown fields are refused."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

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


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(default=None, max_length=64)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat completions request the service supports."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: Literal[1] | None = None
    user: str | None = Field(default=None, max_length=256)

    def provider_options(self) -> dict[str, Any]:
        keys = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "seed")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or a 400 that says what is wrong with it."""
    try:
        data = json.loads(raw or b"null")
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
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            sentence = f"Unknown field '{where}'."
        elif err["type"] == "missing":
            sentence = f"Field '{where}' is required."
        else:
            sentence = f"Field '{where}': {err['msg']}."
        raise IBError("invalid_request", sentence, param=where) from None
