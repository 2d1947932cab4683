"""Backoff maths and the retry decision.

Pure: the random draw and the clock are passed in. The one exception is ``RetryDelays``, the
failure counter a reconnecting loop keeps, which draws for itself unless given a draw.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from conveyor.models import Backoff, Task, TaskStatus

#: A spread of (1, 1): the delay exactly, no jitter.
NO_SPREAD = (1.0, 1.0)


def exponential_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    factor: float = 2.0,
    spread: tuple[float, float] = NO_SPREAD,
    draw: float = 0.0,
) -> float:
    """The one backoff formula: ``min(cap, base * factor**(attempt - 1))``, scaled by a factor
    between ``spread[0]`` and ``spread[1]`` picked by ``draw`` (a number in [0, 1)).

    ``attempt`` is 1 for the first delay; below 1 counts as 1. The spread is given as a range
    rather than a ± fraction because the callers differ: the task policy spreads both ways,
    the reconnecting loops only downwards so that they never wait longer than the cap. A loop
    that has failed a thousand times gets the cap rather than an ``OverflowError``.
    """
    try:
        raw: float = base * factor ** max(0, attempt - 1)
    except OverflowError:
        raw = cap
    low, high = spread
    return max(0.0, min(cap, raw) * (low + (high - low) * draw))


@dataclass(slots=True)
class RetryDelays:
    """The delays of consecutive failures in one loop: each ``next()`` is one failure more,
    ``reset()`` after a success starts again from ``base``."""

    base: float
    cap: float
    spread: tuple[float, float] = NO_SPREAD
    draw: Callable[[], float] = random.random
    failures: int = 0

    def next(self) -> float:
        self.failures += 1
        return exponential_delay(
            self.failures, base=self.base, cap=self.cap, spread=self.spread, draw=self.draw()
        )

    def reset(self) -> None:
        self.failures = 0


def backoff_delay(policy: Backoff, retry_number: int, draw: float) -> float:
    """Delay before retry ``retry_number`` (1 for the first retry).

    ``draw`` is a number in [0, 1); it spreads the delay over ``±jitter`` of its value so that
    many tasks failing together do not come back together.
    """
    return exponential_delay(
        retry_number,
        base=policy.base,
        cap=policy.cap,
        factor=policy.factor,
        spread=(1.0 - policy.jitter, 1.0 + policy.jitter),
        draw=draw,
    )


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
    never got a fair run (docs/design.md §8.5 counts such attempts apart).
    """
    if failure not in (TaskStatus.FAILED, TaskStatus.TIMEOUT):
        raise ValueError(f"retry decisions are for FAILED or TIMEOUT, not {failure}")
    if lost_to_crash and task.attempt <= task.max_retries + 1 + MAX_LOST_ATTEMPTS:
        return RetryDecision(True, now + backoff_delay(policy, 1, draw), False)
    if not retryable or not task.retries_left:
        return RetryDecision(False)
    delay = backoff_delay(policy, task.retry_count + 1, draw)
    return RetryDecision(True, now + delay)
