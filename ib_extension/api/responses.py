"""OpenAI's Responses API on the wire: the request clients send, and the response object
and stream events the service answers with (the subset without server-side state: text,
function tools, structured output).

What the service does with each request field: service/responses_api.py.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Echoed(BaseModel):
    # Items a client echoes back from an earlier response carry output-only fields (ids,
    # status, phase, namespace...) that newer SDKs add: ignored rather than refused.
    model_config = ConfigDict(extra="ignore")


class _Open(BaseModel):
    # Modelled only so the service can refuse it, or drop it, with a sentence of its own.
    model_config = ConfigDict(extra="allow")


class InputText(_Shape):
    type: Literal["input_text"]
    text: str


class OutputText(_Echoed):
    type: Literal["output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class RefusalContent(_Shape):
    type: Literal["refusal"]
    refusal: str


class InputMedia(_Open):
    type: Literal["input_image", "input_file", "input_audio"]


ContentPart = Annotated[InputText | OutputText | RefusalContent | InputMedia,
                        Field(discriminator="type")]


def _content_kind(v: Any) -> str | None:
    return "text" if isinstance(v, str) else "parts" if isinstance(v, list) else None


Content = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[ContentPart], Tag("parts")],
    Discriminator(_content_kind, custom_error_type="content_type",
                  custom_error_message="must be a string or a list of content parts"),
]


class MessageItem(_Echoed):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Echoed):
    type: Literal["function_call"]
    call_id: str = Field(max_length=200)
    name: str = Field(max_length=64)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Echoed):
    type: Literal["function_call_output"]
    call_id: str = Field(max_length=200)
    output: str | list[InputText]
    id: str | None = None
    status: str | None = None


class OtherItem(_Open):
    """Reasoning items (dropped) and items that need server-side state (refused)."""

    type: str


def _item_kind(v: Any) -> str:
    kind = v.get("type", "message") if isinstance(v, dict) else "message"
    return kind if kind in ("message", "function_call", "function_call_output") else "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind),
]


class FunctionTool(_Shape):
    type: Literal["function"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class OtherTool(_Open):
    """Built-in tools (web search, file search, code interpreter...): refused."""

    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("other")],
    Discriminator(lambda v: "function" if isinstance(v, dict) and v.get("type") == "function"
                  else "other"),
]


class NamedFunction(_Shape):
    type: Literal["function"]
    name: str = Field(max_length=64)


class TextFormat(_Shape):
    type: Literal["text"]


class JsonObjectFormat(_Shape):
    type: Literal["json_object"]


class JsonSchemaFormat(_Shape):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["json_schema"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextOptions(_Shape):
    format: Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat,
                      Field(discriminator="type")] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(_Shape):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: str | None = None  # summaries of reasoning: none to give here, dropped


class StreamOptions(_Shape):
    include_obfuscation: bool | None = None


class ResponsesRequest(_Shape):
    model: str | None = None
    input: Annotated[
        Annotated[str, Tag("text")] | Annotated[list[InputItem], Tag("parts")],
        Discriminator(_content_kind, custom_error_type="input_type",
                      custom_error_message="must be a string or a list of input items"),
    ]
    instructions: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    reasoning: Reasoning | None = None
    user: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=256)
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    previous_response_id: str | None = None
    conversation: Any = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None


# ---- what the service answers ---------------------------------------------------------------
def output_items(response_id: str, text: str, tool_calls: list[dict[str, Any]],
                 status: str = "completed") -> list[dict[str, Any]]:
    """The reply's output: a message with its text (if any), then one item per tool call."""
    items: list[dict[str, Any]] = []
    if text:
        items.append(message_item(response_id, text, status))
    items += [function_call_item(response_id, i, tc, status) for i, tc in enumerate(tool_calls)]
    return items


def message_item(response_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [output_text(text)]
    return {"id": f"msg_{response_id}", "type": "message", "status": status,
            "role": "assistant", "content": content}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(response_id: str, index: int, call: dict[str, Any],
                       status: str) -> dict[str, Any]:
    fn = call.get("function") or {}
    return {"id": f"fc_{response_id}_{index}", "type": "function_call", "status": status,
            "call_id": call.get("id") or "", "name": fn.get("name") or "",
            "arguments": fn.get("arguments") or ""}


def response_object(req: ResponsesRequest, *, response_id: str, created: int, model: str,
                    status: str, output: list[dict[str, Any]],
                    usage: tuple[int, int] | None) -> dict[str, Any]:
    """The Response, as the SDK parses it (no state: `store` is false, no previous id)."""
    body: dict[str, Any] = {
        "id": f"resp_{response_id}", "object": "response", "created_at": created,
        "status": status, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": req.instructions, "max_output_tokens": req.max_output_tokens,
        "model": model, "output": output,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": {"effort": req.reasoning.effort if req.reasoning else None,
                      "summary": None},
        "store": False,
        "temperature": req.temperature if req.temperature is not None else 1.0,
        "text": (req.text.model_dump(exclude_none=True, by_alias=True) if req.text
                 else {"format": {"type": "text"}}),
        "tool_choice": (req.tool_choice.model_dump() if isinstance(req.tool_choice, BaseModel)
                        else req.tool_choice or "auto"),
        "tools": [t.model_dump(exclude_none=True) for t in req.tools or []],
        "top_p": req.top_p if req.top_p is not None else 1.0,
        "truncation": req.truncation or "disabled",
        "usage": None, "user": None, "metadata": req.metadata or {},
    }
    if usage is not None:
        body["usage"] = {"input_tokens": usage[0], "input_tokens_details": {"cached_tokens": 0},
                         "output_tokens": usage[1],
                         "output_tokens_details": {"reasoning_tokens": 0},
                         "total_tokens": usage[0] + usage[1]}
    return body


class EventStream:
    """Turns a reply's deltas into the Responses API's stream events, in order.

    Output items are opened as their first delta arrives (text, then each tool call by
    its index) and all closed at the end.
    """

    def __init__(self, req: ResponsesRequest, response_id: str, created: int, model: str):
        self.req = req
        self.id = response_id
        self.created = created
        self.model = model
        self._seq = itertools.count()
        self._text: list[str] = []
        self._text_index: int | None = None
        self._calls: dict[int, tuple[int, dict[str, Any]]] = {}  # call index -> (output index, call)
        self._opened = 0

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "sequence_number": next(self._seq), **fields}

    def _response(self, status: str, output: list, usage: tuple[int, int] | None = None) -> dict:
        return response_object(self.req, response_id=self.id, created=self.created,
                               model=self.model, status=status, output=output, usage=usage)

    def start(self) -> list[dict[str, Any]]:
        snapshot = self._response("in_progress", [])
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

    def delta(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        text = delta.get("content") or delta.get("refusal")
        if text:
            if self._text_index is None:
                self._text_index = self._opened
                self._opened += 1
                item = message_item(self.id, None, "in_progress")
                out.append(self._event("response.output_item.added",
                                       output_index=self._text_index, item=item))
                out.append(self._event("response.content_part.added", item_id=item["id"],
                                       output_index=self._text_index, content_index=0,
                                       part=output_text("")))
            self._text.append(text)
            out.append(self._event("response.output_text.delta", item_id=f"msg_{self.id}",
                                   output_index=self._text_index, content_index=0,
                                   delta=text, logprobs=[]))
        for tc in delta.get("tool_calls") or []:
            index = tc.get("index", 0)
            fn = tc.get("function") or {}
            if index not in self._calls:
                call = {"id": tc.get("id") or "", "function": {"name": fn.get("name") or "",
                                                               "arguments": ""}}
                self._calls[index] = (self._opened, call)
                self._opened += 1
                item = function_call_item(self.id, index, call, "in_progress")
                out.append(self._event("response.output_item.added",
                                       output_index=self._calls[index][0], item=item))
            position, call = self._calls[index]
            if fn.get("arguments"):
                call["function"]["arguments"] += fn["arguments"]
                out.append(self._event("response.function_call_arguments.delta",
                                       item_id=f"fc_{self.id}_{index}", output_index=position,
                                       delta=fn["arguments"]))
        return out

    def end(self, finish_reason: str | None, usage: tuple[int, int]) -> list[dict[str, Any]]:
        out = []
        done: list[tuple[int, dict[str, Any]]] = []
        if self._text_index is not None:
            text = "".join(self._text)
            item = message_item(self.id, text, "completed")
            out.append(self._event("response.output_text.done", item_id=item["id"],
                                   output_index=self._text_index, content_index=0, text=text,
                                   logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=item["id"],
                                   output_index=self._text_index, content_index=0,
                                   part=output_text(text)))
            done.append((self._text_index, item))
        for index, (position, call) in sorted(self._calls.items()):
            item = function_call_item(self.id, index, call, "completed")
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=position, name=item["name"],
                                   arguments=item["arguments"]))
            done.append((position, item))
        done.sort(key=lambda pair: pair[0])
        for position, item in done:
            out.append(self._event("response.output_item.done", output_index=position,
                                   item=item))
        status = "incomplete" if finish_reason == "length" else "completed"
        final = self._response(status, [item for _, item in done], usage)
        out.append(self._event(f"response.{status}", response=final))
        return out

    def error(self, body: dict[str, Any]) -> dict[str, Any]:
        """An error event: OpenAI's fields, and the `error` object the SDK raises from."""
        err = body["error"]
        return self._event("error", code=err["code"], message=err["message"],
                           param=err.get("param"), error=err)
