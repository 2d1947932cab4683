"""``Outcomes``: how attempts end, for the worker and the scheduler alike.

The worker reports a task that raised, timed out or was interrupted; the scheduler times out
attempts nobody will finish (a deadline passed, a worker died); a worker's reconciler gives up
attempts it lost track of. All of them go through this one object, built once in ``bootstrap``,
so they follow the same retry policy and put retried tasks back where the scheduler finds them
(``placement``) the same way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from conveyor.catalog import Catalog, TypeSpec
from conveyor.config import TaskDefaults
from conveyor.coordination.protocol import TaskQueues
from conveyor.models import Backoff, Task, TaskStatus
from conveyor.placement import place
from conveyor.retry import decide_retry
from conveyor.store.protocol import Outcome, TaskMoves


class Outcomes:
    def __init__(
        self, moves: TaskMoves, queues: TaskQueues, catalog: Catalog, defaults: TaskDefaults
    ) -> None:
        self._moves = moves
        self._queues = queues
        self._catalog = catalog
        self._defaults = defaults

    def policy(self, spec: TypeSpec | None) -> Backoff:
        """The retry backoff of a type: its config or registration, else the defaults."""
        return spec.backoff if spec is not None else self._defaults.backoff

    async def backoff(self, task: Task) -> Backoff:
        """The backoff of the task's type as its own tenant configured it."""
        return self.policy(await self._catalog.spec(task.task_type, task.tenant))

    @staticmethod
    def failure(
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
        """The outcome of a failed attempt, with its retry decided (and due time drawn) from
        ``task`` as the caller read it, which the outcome carries so the finish need not read
        it again (``Outcome.task``)."""
        decision = decide_retry(
            task, status, retryable=retryable, policy=backoff, now=now, draw=random.random(),
            lost_to_crash=lost_to_crash,
        )
        return Outcome(
            task.id, task.attempt, status, error=error,
            retry_at=decision.run_at if decision.retry else None,
            spend_retry=decision.counts_against_retries,
            worker_id=worker_id, epoch=epoch, task=task,
        )

    async def record(self, outcomes: Sequence[Outcome], now: float) -> list[Task]:
        """Record outcomes, then queue the tasks that went back to PENDING for a retry and the
        children that the final moves released (docs/design.md §10)."""
        moved = await self._moves.finish(outcomes, now)
        retried = [t for t in moved if t.status == TaskStatus.PENDING]
        await place(self._queues, retried + moved.released, now)
        return moved

    async def expire(
        self,
        tasks: Sequence[Task],
        now: float,
        *,
        error: str,
        lost_to_crash: bool,
        epoch: int | None = None,
        worker_id: str | None = None,
    ) -> list[Task]:
        """Time out PROCESSING tasks that nobody will finish (deadline passed, worker gone).

        A scheduler passes its ``epoch``; a worker that lost track of its own attempt passes
        its ``worker_id`` instead, so every such row in ``task_logs`` says who wrote it."""
        outcomes = [
            self.failure(
                t, TaskStatus.TIMEOUT, error, retryable=True,
                backoff=await self.backoff(t), now=now,
                lost_to_crash=lost_to_crash, worker_id=worker_id, epoch=epoch,
            )
            for t in tasks
        ]
        return await self.record(outcomes, now)
