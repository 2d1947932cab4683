"""Backoff maths and the retry decision (pure: the draw and the clock are passed in)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.models import Backoff, Priority, Task, TaskStatus
from conveyor.retry import (
    MAX_LOST_ATTEMPTS,
    RetryDelays,
    backoff_delay,
    decide_retry,
    exponential_delay,
)

NO_JITTER = Backoff(base=1.0, factor=2.0, cap=300.0, jitter=0.0)
NOW = 1_000_000.0


def task(*, attempt: int = 1, retry_count: int = 0, max_retries: int = 3) -> Task:
    return Task(
        id="t1", task_type="echo", priority=Priority.NORMAL, payload={},
        status=TaskStatus.PROCESSING, max_retries=max_retries, timeout=30.0,
        created_at=NOW - 10, run_at=NOW - 10, retry_count=retry_count, attempt=attempt,
    )


@pytest.mark.parametrize(("n", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 256.0)])
def test_delay_is_base_times_factor_to_the_n(n: int, expected: float) -> None:
    assert backoff_delay(NO_JITTER, n, 0.5) == pytest.approx(expected)


def test_delay_with_other_base_and_factor() -> None:
    policy = Backoff(base=0.5, factor=3.0, cap=1000.0, jitter=0.0)
    assert [backoff_delay(policy, n, 0.0) for n in (1, 2, 3)] == pytest.approx([0.5, 1.5, 4.5])


def test_delay_is_capped() -> None:
    assert backoff_delay(NO_JITTER, 10, 0.5) == pytest.approx(300.0)  # 512 > cap
    assert backoff_delay(NO_JITTER, 60, 0.5) == pytest.approx(300.0)
    small_cap = Backoff(base=1.0, factor=2.0, cap=5.0, jitter=0.0)
    assert backoff_delay(small_cap, 3, 0.0) == pytest.approx(4.0)
    assert backoff_delay(small_cap, 4, 0.0) == pytest.approx(5.0)


def test_retry_number_below_one_is_the_base() -> None:
    assert backoff_delay(NO_JITTER, 0, 0.5) == pytest.approx(1.0)
    assert backoff_delay(NO_JITTER, -3, 0.5) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("draw", "expected"),
    [(0.0, 8.0), (0.5, 10.0), (0.999, 11.996), (0.25, 9.0), (0.75, 11.0)],
)
def test_jitter_spreads_around_the_delay(draw: float, expected: float) -> None:
    policy = Backoff(base=10.0, factor=2.0, cap=300.0, jitter=0.2)
    assert backoff_delay(policy, 1, draw) == pytest.approx(expected)


@pytest.mark.parametrize("draw", [0.0, 0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("n", [1, 3, 20])
def test_jitter_stays_within_its_bounds(draw: float, n: int) -> None:
    policy = Backoff(base=2.0, factor=2.0, cap=60.0, jitter=0.3)
    plain = min(60.0, 2.0 * 2.0 ** (n - 1))
    delay = backoff_delay(policy, n, draw)
    assert plain * 0.7 <= delay < plain * 1.3


def test_jitter_applies_to_the_capped_value() -> None:
    policy = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.5)
    assert backoff_delay(policy, 30, 0.999) == pytest.approx(14.99)
    assert backoff_delay(policy, 30, 0.0) == pytest.approx(5.0)


def test_delay_is_never_negative() -> None:
    policy = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=1.0)
    assert backoff_delay(policy, 1, 0.0) == 0.0
    assert backoff_delay(Backoff(base=0.0, factor=2.0, cap=10.0, jitter=0.2), 5, 0.3) == 0.0


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0)]
)
def test_exponential_delay_doubles_from_base_up_to_the_cap(attempt: int, expected: float) -> None:
    assert exponential_delay(attempt, base=0.1, cap=5.0) == pytest.approx(expected)


def test_exponential_delay_with_another_factor() -> None:
    delays = [exponential_delay(n, base=1.0, cap=100.0, factor=3.0) for n in (1, 2, 3, 4)]
    assert delays == pytest.approx([1.0, 3.0, 9.0, 27.0])


def test_exponential_delay_below_the_first_attempt_is_the_base() -> None:
    assert exponential_delay(0, base=0.5, cap=10.0) == pytest.approx(0.5)
    assert exponential_delay(-2, base=0.5, cap=10.0) == pytest.approx(0.5)


@pytest.mark.parametrize(("draw", "scale"), [(0.0, 0.5), (0.5, 0.75), (0.999, 0.9995)])
def test_exponential_delay_spread_scales_between_its_ends(draw: float, scale: float) -> None:
    delay = exponential_delay(3, base=0.05, cap=1.0, spread=(0.5, 1.0), draw=draw)
    assert delay == pytest.approx(0.2 * scale)


def test_exponential_delay_spread_applies_after_the_cap() -> None:
    assert exponential_delay(20, base=1.0, cap=10.0, spread=(0.8, 1.2), draw=0.0) == 8.0
    assert exponential_delay(20, base=1.0, cap=10.0, spread=(0.8, 1.2), draw=0.999) == (
        pytest.approx(11.996)
    )


def test_exponential_delay_without_spread_ignores_the_draw() -> None:
    assert exponential_delay(2, base=1.0, cap=10.0, draw=0.0) == 2.0
    assert exponential_delay(2, base=1.0, cap=10.0, draw=0.999) == 2.0


def test_exponential_delay_is_never_negative() -> None:
    assert exponential_delay(1, base=1.0, cap=10.0, spread=(-1.0, 1.0), draw=0.0) == 0.0


def test_exponential_delay_far_past_the_cap_is_the_cap_not_an_overflow() -> None:
    # Thousands of failures in a row (a long outage) must still give a delay.
    assert exponential_delay(5000, base=0.05, cap=1.0) == 1.0
    assert exponential_delay(5000, base=0.1, cap=5.0, factor=2) == 5.0
    assert backoff_delay(NO_JITTER, 5000, 0.5) == pytest.approx(300.0)


def test_retry_delays_grow_per_failure_and_reset() -> None:
    delays = RetryDelays(base=0.1, cap=0.5, draw=lambda: 0.5)
    assert [delays.next() for _ in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.5])
    assert delays.failures == 4
    delays.reset()
    assert delays.failures == 0
    assert delays.next() == pytest.approx(0.1)


def test_retry_delays_draw_once_per_failure() -> None:
    draws = iter([0.0, 0.5, 0.999])
    delays = RetryDelays(base=1.0, cap=60.0, spread=(0.5, 1.5), draw=lambda: next(draws))
    assert [delays.next() for _ in range(3)] == pytest.approx([0.5, 2.0, 5.996])


def test_retry_when_retries_left() -> None:
    decision = decide_retry(
        task(retry_count=0), TaskStatus.FAILED, retryable=True, policy=NO_JITTER, now=NOW,
        draw=0.5,
    )
    assert decision.retry
    assert decision.counts_against_retries
    assert decision.run_at == pytest.approx(NOW + 1.0)


def test_retry_delay_grows_with_retries_spent() -> None:
    decision = decide_retry(
        task(attempt=3, retry_count=2), TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER,
        now=NOW, draw=0.5,
    )
    assert decision.retry
    assert decision.run_at == pytest.approx(NOW + 4.0)  # third retry: base * 2**2


def test_last_retry_then_exhausted() -> None:
    last = decide_retry(
        task(attempt=3, retry_count=2, max_retries=3), TaskStatus.FAILED, retryable=True,
        policy=NO_JITTER, now=NOW, draw=0.5,
    )
    assert last.retry
    exhausted = decide_retry(
        task(attempt=4, retry_count=3, max_retries=3), TaskStatus.FAILED, retryable=True,
        policy=NO_JITTER, now=NOW, draw=0.5,
    )
    assert not exhausted.retry


def test_no_retry_when_max_retries_is_zero() -> None:
    decision = decide_retry(
        task(max_retries=0), TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER, now=NOW,
        draw=0.5,
    )
    assert not decision.retry


def test_non_retryable_fails_at_once() -> None:
    decision = decide_retry(
        task(retry_count=0, max_retries=5), TaskStatus.FAILED, retryable=False,
        policy=NO_JITTER, now=NOW, draw=0.5,
    )
    assert not decision.retry


@pytest.mark.parametrize("status", [s for s in TaskStatus if s not in (
    TaskStatus.FAILED, TaskStatus.TIMEOUT)])
def test_decisions_only_for_failed_or_timeout(status: TaskStatus) -> None:
    with pytest.raises(ValueError, match="FAILED or TIMEOUT"):
        decide_retry(task(), status, retryable=True, policy=NO_JITTER, now=NOW, draw=0.5)


def test_lost_to_crash_does_not_spend_a_retry() -> None:
    # Retries exhausted, yet an attempt lost to a crash still comes back, for free.
    exhausted = task(attempt=4, retry_count=3, max_retries=3)
    decision = decide_retry(
        exhausted, TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER, now=NOW, draw=0.5,
        lost_to_crash=True,
    )
    assert decision.retry
    assert not decision.counts_against_retries
    assert decision.run_at == pytest.approx(NOW + 1.0)


def test_lost_to_crash_even_with_zero_retries() -> None:
    decision = decide_retry(
        task(attempt=1, max_retries=0), TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER,
        now=NOW, draw=0.5, lost_to_crash=True,
    )
    assert decision.retry
    assert not decision.counts_against_retries


def test_lost_to_crash_is_capped_by_max_lost_attempts() -> None:
    base = task(max_retries=2, retry_count=2)
    limit = base.max_retries + 1 + MAX_LOST_ATTEMPTS
    at_limit = decide_retry(
        replace(base, attempt=limit), TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER,
        now=NOW, draw=0.5, lost_to_crash=True,
    )
    assert at_limit.retry and not at_limit.counts_against_retries
    beyond = decide_retry(
        replace(base, attempt=limit + 1), TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER,
        now=NOW, draw=0.5, lost_to_crash=True,
    )
    assert not beyond.retry


def test_lost_to_crash_beyond_the_cap_still_uses_normal_retries() -> None:
    # Past the lost-attempt cap, a task that still has retries left spends one.
    t = task(max_retries=10, retry_count=0, attempt=10 + 1 + MAX_LOST_ATTEMPTS + 1)
    decision = decide_retry(
        t, TaskStatus.TIMEOUT, retryable=True, policy=NO_JITTER, now=NOW, draw=0.5,
        lost_to_crash=True,
    )
    assert decision.retry
    assert decision.counts_against_retries
