"""What of a candidate's chat request reaches the provider (service/provider_request.py)."""

from ib_extension.api.chat import ChatRequest
from ib_extension.api.requests import parse
from ib_extension.service import provider_request


def test_the_provider_gets_the_session_id_as_user_and_nothing_the_service_drops():
    req = parse(ChatRequest, {
        "messages": [{"role": "system", "content": [
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": "hi"}],
        "user": "Ada Lovelace", "safety_identifier": "ada@example.com", "store": True,
        "metadata": {"k": "v"}, "service_tier": "priority", "prompt_cache_key": "x",
        "temperature": 0.2, "seed": 7, "parallel_tool_calls": False,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "Out", "schema": {"type": "object"}, "strict": True}}})
    opts = provider_request.options(req, "s_123")
    assert opts["user"] == "s_123"
    assert not {"safety_identifier", "store", "metadata", "service_tier",
                "prompt_cache_key"} & set(opts)
    assert opts["temperature"] == 0.2 and opts["seed"] == 7
    assert opts["parallel_tool_calls"] is False and opts["tools"][0]["function"]["name"] == "f"
    assert opts["response_format"]["json_schema"]["schema"] == {"type": "object"}
    sent = provider_request.messages(req)
    assert "Ada" not in str(sent) and "cache_control" not in str(sent)
    assert sent[0]["content"] == [{"type": "text", "text": "Be brief."}]
