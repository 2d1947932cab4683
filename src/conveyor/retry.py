"""Backoff maths and the retry decision. Pure: the random draw and the clock are passed in."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.models import Backoff, Task, TaskStatus


def backoff_delay(policy: Backoff, retry_number: int, draw: float) -> float:
    """Delay before retry ``retry_number`` (1 for the first retry).

    ``draw`` is a number in [0, 1); it spreads the delay over ``±jitter`` of its value so that
    many tasks failing together do not come back together.
    """
    raw = policy.base * policy.factor ** max(0, retry_number - 1)
    delay = min(policy.cap, raw)
    spread = delay * policy.jitter * (2.0 * draw - 1.0)
    return max(0.0, delay + spread)


MAX_LOST_ATTEMPTS = 5
"""Attempts lost to crashes do not spend retries, but a task that kills every worker it
touches must end somewhere: after this many extra attempts it times out for good."""


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do with an attempt that ended in FAILED or TIMEOUT."""

    retry: bool
    run_at: float = 0.0
    counts_against_retries: bool = True


def decide_retry(
    task: Task,
    failure: TaskStatus,
    *,
    retryable: bool,
    policy: Backoff,
    now: float,
    draw: float,
    lost_to_crash: bool = False,
) -> RetryDecision:
    """Decide whether a failed attempt is retried and when.

    An attempt lost to a crashed worker is always retried without spending a retry: the task
    never got a fair run (DESIGN.md §8.5 counts such attempts apart).
    """
    if failure not in (TaskStatus.FAILED, TaskStatus.TIMEOUT):
        raise ValueError(f"retry decisions are for FAILED or TIMEOUT, not {failure}")
    if lost_to_crash and task.attempt <= task.max_retries + 1 + MAX_LOST_ATTEMPTS:
        return RetryDecision(True, now + backoff_delay(policy, 1, draw), False)
    if not retryable or not task.retries_left:
        return RetryDecision(False)
    delay = backoff_delay(policy, task.retry_count + 1, draw)
    return RetryDecision(True, now + delay)
