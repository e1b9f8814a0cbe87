"""The Responses API as a chat completion: one gateway, so the same budget, clock, log and
errors apply, and any OpenAI-compatible provider serves it.

| request field | what the service does |
|---|---|
| input (text, messages, function_call, function_call_output items) | the chat messages |
| instructions | a developer message first (logged and flagged like any candidate instructions) |
| tools (function), tool_choice, parallel_tool_calls, text.format | tools, tool_choice, parallel_tool_calls, response_format |
| max_output_tokens, temperature, top_p, reasoning.effort, text.verbosity | max_completion_tokens, temperature, top_p, reasoning_effort, verbosity |
| image, file and audio inputs | refused by policy, as in chat |
| built-in tools (web search, file search, code interpreter...) | refused: only function tools |
| previous_response_id, conversation, item_reference items, background, prompt | refused: the service keeps no conversation state; send the whole input |
| reasoning items in the input | dropped: there is no reasoning state to carry over |
| top_logprobs, include | refused when asked for |
| store, metadata, user, safety_identifier, service_tier, prompt_cache_key, truncation, max_tool_calls, stream_options, reasoning.summary | accepted and dropped, as in chat |
"""

from __future__ import annotations

from typing import Any

from ..api.chat import ChatRequest
from ..api.errors import IBError
from ..api.requests import parse
from ..api.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputMedia,
    MessageItem,
    OtherTool,
    ResponsesRequest,
)

_STATEFUL = ("previous_response_id", "conversation", "prompt")
_MEDIA = {"input_image": "Images", "input_file": "Files", "input_audio": "Audio"}


def to_chat(req: ResponsesRequest) -> ChatRequest:
    """The chat request this Responses request amounts to, or a 400 naming the field."""
    for field in _STATEFUL:
        if getattr(req, field) is not None:
            raise _refuse(field, "needs conversation state, which this service does not keep; "
                          "send the whole conversation in input")
    if req.background:
        raise _refuse("background", "is not available; leave it out")
    if req.top_logprobs or req.include:
        field = "top_logprobs" if req.top_logprobs else "include"
        raise _refuse(field, "is not available in this interview; leave it out")
    body: dict[str, Any] = {"model": req.model, "stream": bool(req.stream),
                            "messages": _messages(req)}
    for i, tool in enumerate(req.tools or []):
        if isinstance(tool, OtherTool):
            raise _refuse(f"tools.{i}", f"is a built-in '{tool.type}' tool; only function "
                          "tools are available in this interview")
    if req.tools:
        body["tools"] = [{"type": "function", "function": t.model_dump(
            exclude={"type"}, exclude_none=True)} for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _tool_choice(req.tool_choice)
    fmt = req.text.format if req.text else None
    if fmt is not None:
        if fmt.type == "json_schema":
            spec = fmt.model_dump(exclude={"type"}, exclude_none=True, by_alias=True)
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": fmt.type}
    simple = {"parallel_tool_calls": req.parallel_tool_calls, "temperature": req.temperature,
              "top_p": req.top_p, "max_completion_tokens": req.max_output_tokens,
              "reasoning_effort": req.reasoning.effort if req.reasoning else None,
              "verbosity": req.text.verbosity if req.text else None}
    body.update({k: v for k, v in simple.items() if v is not None})
    return parse(ChatRequest, body)


def _messages(req: ResponsesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if req.instructions:
        messages.append({"role": "developer", "content": req.instructions})
    if isinstance(req.input, str):
        messages.append({"role": "user", "content": req.input})
        return messages
    for i, item in enumerate(req.input):
        if isinstance(item, MessageItem):
            messages.append({"role": item.role, "content": _content(item, f"input.{i}")})
        elif isinstance(item, FunctionCallItem):
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            output = item.output if isinstance(item.output, str) else \
                "".join(p.text for p in item.output)
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
        elif item.type == "reasoning":
            continue  # no reasoning state to carry over
        else:
            raise _refuse(f"input.{i}", f"is a '{item.type}' item, which needs conversation "
                          "state this service does not keep; send messages and tool results")
    return messages


def _content(item: MessageItem, where: str) -> str | list[dict[str, Any]]:
    if isinstance(item.content, str):
        return item.content
    parts = []
    for j, part in enumerate(item.content):
        if isinstance(part, InputMedia):
            raise IBError("invalid_request",
                          f"{_MEDIA[part.type]} are not allowed in this interview ({where}."
                          f"content.{j} is an '{part.type}' part); send text only.",
                          param=f"{where}.content.{j}")
        text = part.refusal if part.type == "refusal" else part.text
        parts.append({"type": "text", "text": text})
    return parts


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        raise _refuse("tool_choice", f"of type '{choice.get('type')}' is not available; use "
                      "'auto', 'none', 'required' or a function")
    return {"type": "function", "function": {"name": choice.name}}


def _refuse(field: str, problem: str) -> IBError:
    return IBError("invalid_request", f"Field '{field}' {problem}.", param=field)
