"""When a failed fetch may be tried again: exponential back-off, capped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RetrySchedule:
    """Tracks consecutive failures; the wait doubles from `first_wait` up to `max_wait`."""

    first_wait: float = 1.0
    max_wait: float = 300.0
    failures: int = 0
    next_attempt: float = 0.0

    def may_try(self, now: float) -> bool:
        return now >= self.next_attempt

    def succeeded(self, now: float, *, pause: float = 0.0) -> None:
        """Reset the failure count; the next attempt is allowed after `pause` seconds."""
        self.failures = 0
        self.next_attempt = now + pause

    def failed(self, now: float) -> None:
        self.failures += 1
        wait = min(self.first_wait * 2 ** min(self.failures - 1, 30), self.max_wait)
        self.next_attempt = now + wait
