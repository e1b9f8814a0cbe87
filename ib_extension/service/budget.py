"""The token ledger of one session: decide, reserve before a call, settle or release after.

Plain data, mutated only on the event loop's thread: `admit` decides and `reserve` takes
with no await in between, so two concurrent requests can never spend the same tokens.

Two amounts of "left" matter, and the refusal sentences say which one ran out:
  settled_left = budget - used             the most any request can still get: tokens in
                                           flight only ever settle at or below what they hold
  left         = budget - used - reserved  what is provably free right now
A request that fits `settled_left` but not `left` waits for the requests in flight to
settle; only one that cannot fit `settled_left` is refused for the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal


class BudgetExceeded(Exception):
    def __init__(self, needed: int, left: int):
        super().__init__(f"needs {needed} tokens, {left} left")
        self.needed = needed
        self.left = left


@dataclass(frozen=True)
class Decision:
    action: Literal["serve", "wait", "refuse"]
    cap: int = 0  # completion tokens the reply may use, when serving


@dataclass
class Ledger:
    budget: int
    prompt: int = 0  # settled prompt tokens
    completion: int = 0  # settled completion tokens
    reservations: dict[str, int] = field(default_factory=dict)
    # The highest billed/estimated prompt ratio seen: a provider that counts more than
    # tiktoken gets its prompts reserved at its own count from then on (not persisted:
    # relearned after a restart, and settling clamps meanwhile).
    prompt_ratio: float = 1.0
    unbilled: int = 0  # tokens a provider reported beyond a reservation, not charged

    @property
    def used(self) -> int:
        return self.prompt + self.completion

    @property
    def reserved(self) -> int:
        return sum(self.reservations.values())

    @property
    def left(self) -> int:
        """Tokens a new request may reserve now."""
        return max(0, self.budget - self.used - self.reserved)

    @property
    def settled_left(self) -> int:
        """Tokens left once nothing is in flight (what the candidate's meter shows)."""
        return max(0, self.budget - self.used)

    def prompt_reserve(self, estimate: int, margin: float) -> int:
        """Tokens to hold for a prompt tiktoken counts as `estimate`."""
        return math.ceil(estimate * self.prompt_ratio * (1 + margin)) + 4

    def admit(self, prompt: int, wanted: int) -> Decision:
        """Serve a request holding `prompt` tokens for its prompt, with the largest reply
        up to `wanted` it could get if it were alone; wait while requests in flight hold
        what it needs; refuse when even the settled budget cannot hold one reply token."""
        alone = min(wanted, self.settled_left - prompt)
        if alone < 1:
            return Decision("refuse")
        if self.left - prompt >= alone:
            return Decision("serve", alone)
        return Decision("wait")

    def reserve(self, key: str, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a reservation must be positive")
        if key in self.reservations:
            raise ValueError(f"reservation {key!r} already held")
        if amount > self.left:
            raise BudgetExceeded(amount, self.left)
        self.reservations[key] = amount

    def settle(self, key: str, prompt: int, completion: int) -> tuple[int, int]:
        """Charge what the provider billed, at most what was reserved, and free the rest.

        Returns the (prompt, completion) tokens charged. What was billed beyond the
        reservation is counted in `unbilled`, not charged, so the budget is never exceeded
        whatever a provider reports. A reply without a reservation (one a restart
        interrupted) is charged at most what is left.
        """
        limit = self.reservations.pop(key) if key in self.reservations else self.settled_left
        prompt, completion = max(0, prompt), max(0, completion)
        charged_prompt = min(prompt, limit)
        charged_completion = min(completion, limit - charged_prompt)
        self.prompt += charged_prompt
        self.completion += charged_completion
        self.unbilled += prompt + completion - charged_prompt - charged_completion
        return charged_prompt, charged_completion

    def release(self, key: str) -> None:
        self.reservations.pop(key, None)

    def learn_prompt(self, estimate: int, billed: int) -> None:
        """Remember how much more than tiktoken's `estimate` the provider billed."""
        if estimate > 0 and billed > estimate * self.prompt_ratio:
            self.prompt_ratio = billed / estimate

    def extend(self, tokens: int) -> None:
        if tokens <= 0:
            raise ValueError("an extension must be positive")
        self.budget += tokens
