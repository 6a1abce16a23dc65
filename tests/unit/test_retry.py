import pytest

from sources.retry import RetriesExhausted, RetryPolicy, Transient, call_with_retry


class Flaky:
    def __init__(self, failures, error=Transient("HTTP 429 Too Many Requests")):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "data"


def test_transient_failures_are_retried_with_growing_jittered_waits():
    waits = []
    fn = Flaky(3)
    value, attempts = call_with_retry(fn, RetryPolicy(max_attempts=5, base_delay_s=1, max_delay_s=30), sleep=waits.append)
    assert (value, attempts, fn.calls) == ("data", 4, 4)
    assert len(waits) == 3
    # Full jitter: each wait is random in [0, base * 2**n], capped.
    assert all(0 <= w <= cap for w, cap in zip(waits, (1, 2, 4)))


def test_exhausted_retries_name_the_last_error_and_the_attempts():
    fn = Flaky(10)
    with pytest.raises(RetriesExhausted) as exc:
        call_with_retry(fn, RetryPolicy(max_attempts=3), sleep=lambda s: None)
    assert exc.value.attempts == 3 and fn.calls == 3
    assert "HTTP 429" in str(exc.value) and "after 3 attempts" in str(exc.value)


def test_terminal_errors_are_not_retried():
    fn = Flaky(1, error=LookupError("NOPE: unknown ticker"))
    with pytest.raises(LookupError, match="unknown ticker"):
        call_with_retry(fn, RetryPolicy(max_attempts=5), sleep=lambda s: None)
    assert fn.calls == 1
