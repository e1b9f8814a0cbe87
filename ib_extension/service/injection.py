"""Heuristics for prompt-injection attempts. They flag for the interviewer; they never block."""

from __future__ import annotations

import re

PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(rx, re.IGNORECASE)
    for name, rx in {
        "ignore_instructions": r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions|rules|prompt|polic(y|ies)|guidelines)\b",
        "reveal_prompt": r"\b(reveal|show|print|repeat|tell me|what (is|are)|output|leak)\b.{0,40}\b(system|hidden|initial|original)\s+(prompt|instructions|message)",
        "role_play": r"\b(pretend|act as|you are now|roleplay|role-play|imagine you are)\b.{0,60}\b(no|without|unrestricted|not bound|free of)\b.{0,30}\b(rules|restrictions|limits|polic(y|ies)|filters?)",
        "jailbreak": r"\b(DAN|developer mode|jailbreak|do anything now)\b",
        "policy_bypass": r"\b(give|write|show)\b.{0,30}\b(full|complete|entire)\b.{0,20}\b(solution|answer|code)\b.{0,40}\b(even though|despite|regardless)\b",
    }.items()
}


def detect(text: str) -> tuple[str, str] | None:
    """The first pattern the text matches and a short excerpt around it, or None."""
    for name, pattern in PATTERNS.items():
        m = pattern.search(text)
        if m:
            start = max(0, m.start() - 20)
            return name, text[start : m.end() + 20].strip()
    return None
