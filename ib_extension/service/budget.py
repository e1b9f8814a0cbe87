"""The token ledger of one session: reserve before a call, settle or release after.

The ledger is plain data mutated only on the event loop's thread, and `reserve` checks
and takes in one step with no await in between, so two concurrent requests can never
spend the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class BudgetExceeded(Exception):
    def __init__(self, needed: int, left: int):
        super().__init__(f"needs {needed} tokens, {left} left")
        self.needed = needed
        self.left = left


@dataclass
class Ledger:
    budget: int
    prompt: int = 0  # settled prompt tokens
    completion: int = 0  # settled completion tokens
    reservations: dict[str, int] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return self.prompt + self.completion

    @property
    def reserved(self) -> int:
        return sum(self.reservations.values())

    @property
    def left(self) -> int:
        """Tokens a new request may still reserve."""
        return max(0, self.budget - self.used - self.reserved)

    @property
    def settled_left(self) -> int:
        """Tokens left once nothing is in flight (what the candidate's meter shows)."""
        return max(0, self.budget - self.used)

    def reserve(self, key: str, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a reservation must be positive")
        if key in self.reservations:
            raise ValueError(f"reservation {key!r} already held")
        if amount > self.left:
            raise BudgetExceeded(amount, self.left)
        self.reservations[key] = amount

    def settle(self, key: str, prompt: int, completion: int) -> None:
        """Charge what the provider billed and free the rest of the reservation."""
        self.reservations.pop(key, None)
        self.prompt += max(0, prompt)
        self.completion += max(0, completion)

    def release(self, key: str) -> None:
        self.reservations.pop(key, None)

    def extend(self, tokens: int) -> None:
        if tokens <= 0:
            raise ValueError("an extension must be positive")
        self.budget += tokens
