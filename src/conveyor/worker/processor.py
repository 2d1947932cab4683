"""Processor: take ids from this worker's queue, start them in the store, run them.

Capacity bounds what is held at once (running plus finished-but-unwritten). Each attempt runs
in its own asyncio task under the task's timeout; a cancel request or a shutdown resolves the
attempt's stop future, whose reason decides the outcome (CANCELLED, or a rerun that spends no
retry). A future rather than cancelling the attempt's task: a cancel that lands before the task
ran its first step, or while it reads its type's config, would end it with no outcome at all,
leaving the row PROCESSING and its slot held for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import Any

import orjson

from conveyor.catalog import Catalog
from conveyor.coordination.protocol import WorkerQueues
from conveyor.duty import Duty
from conveyor.errors import BackendUnavailable, PermanentError
from conveyor.executors.registry import ExecutorRegistry
from conveyor.models import Backoff, QueueItem, Task, TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.store.protocol import Outcome, TaskMoves
from conveyor.worker.completions import Completions

log = logging.getLogger(__name__)


class StopReason(Enum):
    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"


class Processor(Duty):
    name = "processor"

    def __init__(
        self,
        worker_id: str,
        moves: TaskMoves,
        worker_queues: WorkerQueues,
        catalog: Catalog,
        executors: ExecutorRegistry,
        outcomes: Outcomes,
        completions: Completions,
        *,
        capacity: int,
        poll_interval: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(poll_interval, *(() if clock is None else (clock,)))
        self.worker_id = worker_id
        self._moves = moves
        self._worker_queues = worker_queues
        self._catalog = catalog
        self._executors = executors
        self._outcomes = outcomes
        self._completions = completions
        self.capacity = capacity
        # Ids from fetch until the finisher releases them, counted: a rerun can come back to
        # this worker while the outcome of its earlier attempt still waits to be written, and
        # releasing that one must not release the rerun.
        self.claimed: Counter[str] = Counter()
        self.running: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Future[StopReason]] = {}
        self._slot_freed = asyncio.Event()

    def release(self, items: Sequence[QueueItem]) -> None:
        """Called by the finisher once outcomes are written and acked."""
        self._unclaim(item.task_id for item in items)
        self._slot_freed.set()

    def _unclaim(self, task_ids: Iterable[str]) -> None:
        self.claimed.subtract(task_ids)
        for task_id in [t for t, n in self.claimed.items() if n <= 0]:
            del self.claimed[task_id]

    @property
    def load(self) -> int:
        """Slots in use: attempts running plus outcomes not yet written."""
        return self.claimed.total()

    async def wait_for_next_pass(self) -> None:
        if self.load >= self.capacity:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def run_once(self, now: float) -> None:
        free = self.capacity - self.load
        if free <= 0:
            return
        items = await self._worker_queues.fetch(self.worker_id, free, self.interval)
        if not items:
            return
        self.claimed.update(item.task_id for item in items)
        by_id: dict[str, QueueItem] = {}
        twins: list[QueueItem] = []  # an id pushed twice and fetched together: one start
        for item in items:
            if item.task_id in by_id:
                twins.append(item)
            else:
                by_id[item.task_id] = item
        try:
            started = await self._moves.start(list(by_id), self.worker_id, self.clock())
        except BaseException:
            # Let go of them: the reconciler returns ids left in the active list to the queue.
            self._unclaim(item.task_id for item in items)
            raise
        for t in started:
            stop = self._stops[t.id] = asyncio.get_running_loop().create_future()
            self.running[t.id] = asyncio.create_task(self._run(t, by_id.pop(t.id), stop))
        # Cancelled, finished or taken by another worker meanwhile, or a twin of one started.
        for item in [*by_id.values(), *twins]:
            self._completions.add(None, item)

    def interrupt(self, task_id: str, reason: StopReason) -> bool:
        """Ask a running attempt to stop; the first reason given is the one that counts."""
        stop = self._stops.get(task_id)
        if stop is None:
            return False
        if not stop.done():
            stop.set_result(reason)
        return True

    async def drain(self, grace: float) -> None:
        """Let running attempts finish for ``grace`` seconds, then interrupt the rest."""
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=grace)
        for task_id in list(self.running):
            self.interrupt(task_id, StopReason.SHUTDOWN)
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=5.0)

    async def _run(self, task: Task, item: QueueItem, stop: asyncio.Future[StopReason]) -> None:
        context = {"task_id": task.id, "attempt": task.attempt, "worker_id": self.worker_id,
                   "task_type": task.task_type}
        try:
            outcome = await self._attempt(task, stop)
        except Exception as exc:  # a bug in our own code: record it rather than lose the task
            log.exception("unexpected error running task %s", task.id, extra=context)
            outcome = Outcome(task.id, task.attempt, TaskStatus.FAILED, error=repr(exc),
                              worker_id=self.worker_id)
        finally:
            self.running.pop(task.id, None)
            self._stops.pop(task.id, None)
        if outcome.status != TaskStatus.SUCCESS:
            retry = "retry due" if outcome.retry_at is not None else "final"
            log.info("task %s %s (%s): %s", task.id, outcome.status, retry, outcome.error,
                     extra=context)
        self._completions.add(outcome, item)

    async def _attempt(self, task: Task, stop: asyncio.Future[StopReason]) -> Outcome:
        try:
            spec = await self._catalog.spec(task.task_type)
        except BackendUnavailable as unread:  # it never ran: a rerun that spends no retry
            return self._failed(task, TaskStatus.FAILED, f"could not read the type's config: "
                                f"{unread}", True, self._outcomes.policy(None),
                                lost_to_crash=True)
        backoff = self._outcomes.policy(spec)
        if stop.done():  # interrupted before it began: do not start the executor at all
            return self._interrupted(task, stop.result(), backoff)
        inner = asyncio.create_task(self._execute(task, spec.executor if spec else "python",
                                                  dict(spec.executor_config) if spec else {}))
        either: set[asyncio.Future[Any]] = {inner, stop}
        await asyncio.wait(either, timeout=task.timeout, return_when=asyncio.FIRST_COMPLETED)
        if not inner.done():
            inner.cancel()
            await asyncio.gather(inner, return_exceptions=True)
            if stop.done():
                return self._interrupted(task, stop.result(), backoff)
            return self._failed(task, TaskStatus.TIMEOUT, f"timed out after {task.timeout:g}s",
                                True, backoff)
        exc = inner.exception()
        if exc is None:
            return Outcome(task.id, task.attempt, TaskStatus.SUCCESS, result=inner.result(),
                           worker_id=self.worker_id)
        retryable = not isinstance(exc, PermanentError)
        return self._failed(task, TaskStatus.FAILED, _describe(exc), retryable, backoff)

    async def _execute(self, task: Task, executor: str, config: dict[str, object]) -> object:
        result = await self._executors.get(executor).execute(task, config)
        try:
            orjson.dumps(result)
        except TypeError as exc:
            raise PermanentError(f"the result is not JSON serialisable: {exc}") from exc
        return result

    def _interrupted(self, task: Task, reason: StopReason, backoff: Backoff) -> Outcome:
        if reason is StopReason.CANCELLED:
            return Outcome(task.id, task.attempt, TaskStatus.CANCELLED,
                           error="cancelled while running", worker_id=self.worker_id)
        return self._failed(task, TaskStatus.TIMEOUT, "worker shut down before the task finished",
                            True, backoff, lost_to_crash=True)

    def _failed(self, task: Task, status: TaskStatus, error: str, retryable: bool,
                backoff: Backoff, *, lost_to_crash: bool = False) -> Outcome:
        return self._outcomes.failure(
            task, status, error, retryable=retryable, backoff=backoff, now=self.clock(),
            lost_to_crash=lost_to_crash, worker_id=self.worker_id,
        )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
