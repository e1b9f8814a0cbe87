"""The demo model's tool calls and JSON replies: deterministic values that satisfy a schema.

`plan(request, question)` says what the demo model answers: tool calls when the request
offers tools (and does not say tool_choice "none"), JSON when it asks for
`response_format` json_object or json_schema, or None for the usual canned text.

Which tools it calls: the one `tool_choice` names; else those a `[[tool:a,b]]` control
names (only the first when parallel_tool_calls is false); else the first tool. After the
candidate sends tool results back (the last message has role "tool"), it answers in text,
quoting them. String values are the question (shortened), numbers 1, booleans true,
enums and unions their first member: enough for a client to parse, clearly canned.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

MAX_DEPTH = 8


def plan(request: dict[str, Any], question: str, tool_names: list[str]) -> dict[str, Any] | None:
    """{"tool_calls": [...]} or {"text": json text}, or None for the canned text reply."""
    messages = request.get("messages") or []
    tools = [t for t in request.get("tools") or [] if t.get("type") == "function"]
    choice = request.get("tool_choice")
    after_tools = bool(messages) and messages[-1].get("role") == "tool"
    if tools and choice != "none" and not after_tools:
        chosen = _chosen(tools, choice, tool_names, request.get("parallel_tool_calls"))
        return {"tool_calls": [_call(t["function"], question) for t in chosen]}
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        return {"text": json.dumps(instance(schema, question))}
    if fmt.get("type") == "json_object":
        return {"text": json.dumps({"answer": f"Offline demo model: canned JSON for “{question}”."})}
    return None


def tool_results(messages: list[dict[str, Any]]) -> str:
    """The text reply to tool results: quotes what the tools returned."""
    results = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        results.append(str(content))
    quoted = "; ".join(reversed(results))
    return f"*Offline demo model: canned text, not a real AI.* The tools returned: {quoted}"


def _chosen(tools: list[dict], choice: Any, names: list[str], parallel: Any) -> list[dict]:
    by_name = {t["function"]["name"]: t for t in tools}
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        return [by_name[named]] if named in by_name else tools[:1]
    picked = [by_name[n] for n in names if n in by_name] or tools[:1]
    return picked[:1] if parallel is False else picked


def _call(function: dict[str, Any], question: str) -> dict[str, Any]:
    args = instance(function.get("parameters") or {"type": "object"}, question)
    return {"id": f"call_demo_{uuid.uuid4().hex[:16]}", "type": "function",
            "function": {"name": function["name"], "arguments": json.dumps(args)}}


def instance(schema: dict[str, Any], text: str, root: dict | None = None, depth: int = 0) -> Any:
    """A value that satisfies `schema` (the subset clients send: types, enums, const,
    objects, arrays, unions, $ref into $defs)."""
    root = root if root is not None else schema
    if depth > MAX_DEPTH or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return instance(_resolve(root, schema["$ref"]), text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if schema.get(union):
            options = [s for s in schema[union] if s.get("type") != "null"] or schema[union]
            return instance(options[0], text, root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(root, part["$ref"]) if "$ref" in part else part)
        return instance(merged, text, root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: instance(v, text, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        n = max(1, schema.get("minItems", 1))
        return [instance(schema.get("items") or {}, text, root, depth + 1) for _ in range(n)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1.0, float(schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    value = (text or "demo")[: schema.get("maxLength", 60)]
    return value.ljust(schema.get("minLength", 0), ".")


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = root
    for key in ref.removeprefix("#/").split("/"):
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node
