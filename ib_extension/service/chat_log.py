"""What of a chat goes into the conversation log, and what is flagged for the interviewer.

The log keeps two roles, so every dashboard and export reads it without knowing about
tools: "user" holds the candidate's new turn (their last message, or the tool results
they send back), "assistant" the reply (its text, then its tool calls as text).

Messages a candidate writes in other roles reach the model too. So each distinct one is
logged once, as an interviewer-only `chat.flagged_message` event, and counted in the
session's `flagged_messages` flag: system and developer instructions, and assistant text
that the service never sent in this session (a forged history). Tool calls in a history
are not checked: clients re-serialise their arguments.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..api.chat import AssistantMessage, Message, SystemMessage, ToolMessage, text_of


def candidate_turn(messages: list[Message]) -> str:
    """The text of the candidate's new turn."""
    if not isinstance(messages[-1], ToolMessage):
        return text_of(messages[-1].content)
    results = []
    for m in reversed(messages):
        if not isinstance(m, ToolMessage):
            break
        results.append(f"Tool result ({m.tool_call_id}):\n{text_of(m.content)}")
    return "\n\n".join(reversed(results))


def reply_text(text: str, tool_calls: list[dict[str, Any]]) -> str:
    """A reply as the log shows it: its text, then one line per tool call."""
    calls = [f"Tool call: {tc['function']['name']}({tc['function']['arguments']})"
             for tc in tool_calls]
    return "\n\n".join(p for p in [text, *calls] if p)


class Replies:
    """The replies a session was given, as the log holds them (stripped). A history's
    assistant text was given if it is one of them whole (most are: a set lookup, so a long
    interview's turn costs no scan of every reply) or the start of one."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self._whole = set(texts)

    def add(self, text: str) -> None:
        self.texts.append(text)
        self._whole.add(text)

    def gave(self, text: str) -> bool:
        return text in self._whole or any(r.startswith(text) for r in self.texts)


def flagged(messages: list[Message], replies: Replies) -> list[dict[str, str]]:
    """Messages to flag: the candidate's system/developer ones, and assistant text that is
    not (the start of) a reply the service gave."""
    found = []
    for m in messages[:-1]:
        text = text_of(m.content).strip()
        if not text:
            continue
        if isinstance(m, SystemMessage):
            found.append({"role": m.role, "reason": "instructions", "content": text})
        elif isinstance(m, AssistantMessage) and not replies.gave(text):
            found.append({"role": m.role, "reason": "unknown_reply", "content": text})
    return found


def fingerprint(item: dict[str, str]) -> str:
    return hashlib.sha256(f"{item['role']}\0{item['content']}".encode()).hexdigest()
