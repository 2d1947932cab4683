"""Turn "this attempt failed" into a store ``Outcome`` and apply a batch of them.

Shared by the worker (a task raised or timed out) and the scheduler (a worker died, a task
overran its deadline), so both follow the same retry policy and put retried tasks back in the
delayed set the same way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from conveyor.catalog import Catalog
from conveyor.config import TaskDefaults
from conveyor.coordination.protocol import Coordination
from conveyor.models import Backoff, Task, TaskStatus
from conveyor.retry import decide_retry
from conveyor.service import push
from conveyor.store.protocol import Outcome, TaskMoves


def failure_outcome(
    task: Task,
    status: TaskStatus,
    error: str,
    *,
    retryable: bool,
    backoff: Backoff,
    now: float,
    lost_to_crash: bool = False,
    worker_id: str | None = None,
    epoch: int | None = None,
) -> Outcome:
    decision = decide_retry(
        task, status, retryable=retryable, policy=backoff, now=now, draw=random.random(),
        lost_to_crash=lost_to_crash,
    )
    return Outcome(
        task.id, task.attempt, status, error=error,
        retry_at=decision.run_at if decision.retry else None,
        spend_retry=decision.counts_against_retries,
        worker_id=worker_id, epoch=epoch,
    )


async def backoff_for(catalog: Catalog, task: Task, defaults: TaskDefaults) -> Backoff:
    spec = await catalog.spec(task.task_type)
    return spec.backoff if spec is not None else defaults.backoff


async def apply(
    moves: TaskMoves, coordination: Coordination, outcomes: Sequence[Outcome], now: float
) -> list[Task]:
    """Record outcomes, then queue the tasks that went back to PENDING for a retry."""
    moved = await moves.finish(outcomes, now)
    await push(coordination, [t for t in moved if t.status == TaskStatus.PENDING], now)
    return moved


async def expire(
    moves: TaskMoves,
    coordination: Coordination,
    catalog: Catalog,
    defaults: TaskDefaults,
    tasks: Sequence[Task],
    now: float,
    *,
    error: str,
    lost_to_crash: bool,
    epoch: int | None,
    worker_id: str | None = None,
) -> list[Task]:
    """Time out PROCESSING tasks that nobody will finish (deadline passed, worker gone).

    A scheduler passes its ``epoch``; a worker that lost track of its own attempt passes its
    ``worker_id`` instead, so every such row in ``task_logs`` says who wrote it."""
    outcomes = [
        failure_outcome(
            t, TaskStatus.TIMEOUT, error, retryable=True,
            backoff=await backoff_for(catalog, t, defaults), now=now,
            lost_to_crash=lost_to_crash, worker_id=worker_id, epoch=epoch,
        )
        for t in tasks
    ]
    return await apply(moves, coordination, outcomes, now)
