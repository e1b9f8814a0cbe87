"""The OpenAI chat completions request, as candidates' clients send it.

Every field a mainstream client sends is modelled here, so that it is either accepted or
refused with a sentence that names it: what the service forwards, drops or refuses by
policy is decided by the service (`service/provider_request.py`), not here. Unknown
fields are still refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Message(_Shape):
    # Anthropic-style prompt-caching marker that LiteLLM (jupyter-ai) puts on messages and
    # text parts: accepted and dropped, since OpenAI-compatible providers refuse it.
    cache_control: dict[str, Any] | None = None


class TextPart(_Shape):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None  # Anthropic-style marker (LiteLLM): dropped


class _MediaPart(BaseModel):
    # Modelled only so the service can refuse it with a sentence of its own.
    model_config = ConfigDict(extra="allow")


class ImagePart(_MediaPart):
    type: Literal["image_url"]


class AudioPart(_MediaPart):
    type: Literal["input_audio"]


class FilePart(_MediaPart):
    type: Literal["file"]


class RefusalPart(_Shape):
    type: Literal["refusal"]
    refusal: str


def _content_kind(v: Any) -> str | None:
    return "text" if isinstance(v, str) else "parts" if isinstance(v, list) else None


def _content(part: Any) -> Any:
    """A message's content: a string or a list of parts (discriminated, for readable errors)."""
    return Annotated[
        Annotated[str, Tag("text")] | Annotated[list[part], Tag("parts")],
        Discriminator(_content_kind, custom_error_type="content_type",
                      custom_error_message="must be a string or a list of content parts"),
    ]


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Shape):
    name: str = Field(max_length=64)
    arguments: str


class ToolCall(_Shape):
    id: str = Field(max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Message):
    role: Literal["system", "developer"]
    content: _content(TextPart)
    name: str | None = Field(default=None, max_length=64)


class UserMessage(_Message):
    role: Literal["user"]
    content: _content(UserPart)
    name: str | None = Field(default=None, max_length=64)


class AssistantMessage(_Message):
    role: Literal["assistant"]
    content: _content(AssistantPart) | None = None
    refusal: str | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=128)
    function_call: dict[str, Any] | None = None  # deprecated: refused with a sentence
    audio: dict[str, Any] | None = None  # refused: no audio in an interview


class ToolMessage(_Message):
    role: Literal["tool"]
    content: _content(TextPart)
    tool_call_id: str = Field(max_length=200)


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage,
                    Field(discriminator="role")]


def text_of(content: str | list | None) -> str:
    """The text a message's content carries (text and refusal parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(getattr(p, "text", None) or getattr(p, "refusal", None) or "" for p in content)


class FunctionDefinition(_Shape):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Shape):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Shape):
    name: str = Field(max_length=64)


class NamedToolChoice(_Shape):
    type: Literal["function"]
    function: NamedFunction


class TextFormat(_Shape):
    type: Literal["text"]


class JsonObjectFormat(_Shape):
    type: Literal["json_object"]


class JsonSchema(_Shape):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JsonSchemaFormat(_Shape):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat,
                           Field(discriminator="type")]


class StreamOptions(_Shape):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # padding against side channels: not needed here


class ChatRequest(_Shape):
    """OpenAI's chat completions request (what the service does with each field:
    service/provider_request.py)."""

    model: str | None = None
    messages: list[Message] = Field(min_length=1, max_length=500)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    user: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, int] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=256)
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: Any = None
