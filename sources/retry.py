"""Retrying network calls: exponential backoff with jitter, bounded, and honest about why it stopped.

Network sources classify each failure: `Transient` (rate limits, HTTP 5xx, timeouts) is retried
up to a limit; anything else is terminal and raised at once (an unknown ticker is not retried).
`call_with_retry` returns the value and how many attempts it took, or raises `RetriesExhausted`
naming the last error and the attempt count. Tests pass `sleep=` to run without waiting.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying: rate limited (HTTP 429), HTTP 5xx, a timeout or a dropped connection."""


class RetriesExhausted(Exception):
    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"{last} (gave up after {attempts} attempts)")
        self.last = last
        self.attempts = attempts


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 1.0   # first wait is up to this; each later one up to twice the last
    max_delay_s: float = 30.0


def call_with_retry(
    fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(), *, sleep: Callable[[float], None] = time.sleep
) -> tuple[T, int]:
    """Call `fn`, retrying `Transient` failures with exponential backoff and full jitter."""
    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_random_exponential(multiplier=policy.base_delay_s, max=policy.max_delay_s),
        retry=retry_if_exception_type(Transient),
        sleep=sleep,
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                value = fn()
            if not attempt.retry_state.outcome.failed:
                return value, attempt.retry_state.attempt_number
    except RetryError as exc:
        state = exc.last_attempt
        raise RetriesExhausted(state.exception(), state.attempt_number) from state.exception()
    raise AssertionError("unreachable")  # pragma: no cover
