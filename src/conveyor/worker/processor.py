"""Processor: take ids from this worker's queue, start them in the store, run them.

Capacity bounds what is held at once (running plus finished-but-unwritten). Each attempt runs
in its own asyncio task under the task's timeout; a cancel request or a shutdown cancels that
task, and the reason decides the outcome (CANCELLED, or a rerun that spends no retry).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from enum import Enum

import orjson
import structlog

from conveyor.catalog import Catalog
from conveyor.coordination.protocol import WorkerQueues
from conveyor.duty import Duty
from conveyor.errors import PermanentError
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
        self.claimed: set[str] = set()  # ids from fetch until the finisher releases them
        self.running: dict[str, asyncio.Task[None]] = {}
        self._stop_reasons: dict[str, StopReason] = {}
        self._slot_freed = asyncio.Event()

    def release(self, items: Sequence[QueueItem]) -> None:
        """Called by the finisher once outcomes are written and acked."""
        self.claimed.difference_update(item.task_id for item in items)
        self._slot_freed.set()

    @property
    def load(self) -> int:
        """Slots in use: attempts running plus outcomes not yet written."""
        return len(self.claimed)

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
        by_id = {i.task_id: i for i in items}
        try:
            started = await self._moves.start(list(by_id), self.worker_id, self.clock())
        except BaseException:
            # Let go of them: the reconciler returns ids left in the active list to the queue.
            self.claimed.difference_update(by_id)
            raise
        for t in started:
            self.running[t.id] = asyncio.create_task(self._run(t, by_id.pop(t.id)))
        for item in by_id.values():  # cancelled, finished or taken by another worker meanwhile
            self._completions.add(None, item)

    def interrupt(self, task_id: str, reason: StopReason) -> bool:
        running = self.running.get(task_id)
        if running is None:
            return False
        self._stop_reasons.setdefault(task_id, reason)
        running.cancel()
        return True

    async def drain(self, grace: float) -> None:
        """Let running attempts finish for ``grace`` seconds, then interrupt the rest."""
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=grace)
        for task_id in list(self.running):
            self.interrupt(task_id, StopReason.SHUTDOWN)
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=5.0)

    async def _run(self, task: Task, item: QueueItem) -> None:
        # Each attempt is its own asyncio task, so the bound context is this attempt's alone:
        # every line logged while it runs (the task's own too) carries it.
        with structlog.contextvars.bound_contextvars(
            task_id=task.id, task_type=task.task_type, attempt=task.attempt,
            worker_id=self.worker_id,
        ):
            began = time.monotonic()
            try:
                outcome = await self._attempt(task)
            except Exception as exc:  # a bug in our own code: record it, never lose the task
                log.exception("unexpected error running task %s", task.id)
                outcome = Outcome(task.id, task.attempt, TaskStatus.FAILED, error=repr(exc),
                                  worker_id=self.worker_id)
            finally:
                self.running.pop(task.id, None)
            self._stop_reasons.pop(task.id, None)
            _log_finished(task, outcome, time.monotonic() - began)
        self._completions.add(outcome, item)

    async def _attempt(self, task: Task) -> Outcome:
        spec = await self._catalog.spec(task.task_type)
        backoff = self._outcomes.policy(spec)
        inner = asyncio.create_task(self._execute(task, spec.executor if spec else "python",
                                                  dict(spec.executor_config) if spec else {}))
        try:
            done, _ = await asyncio.wait({inner}, timeout=task.timeout)
        except asyncio.CancelledError:
            inner.cancel()
            await asyncio.gather(inner, return_exceptions=True)
            return self._interrupted(task, backoff)
        if not done:
            inner.cancel()
            await asyncio.gather(inner, return_exceptions=True)
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

    def _interrupted(self, task: Task, backoff: Backoff) -> Outcome:
        reason = self._stop_reasons.get(task.id, StopReason.SHUTDOWN)
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


def _log_finished(task: Task, outcome: Outcome, seconds: float) -> None:
    """One INFO line per finished attempt (``--log-level WARNING`` silences them)."""
    took = f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"
    detail = ""
    if outcome.status != TaskStatus.SUCCESS:
        detail = f" ({'retry due' if outcome.retry_at is not None else 'final'}): {outcome.error}"
    log.info("task %s %s attempt %d: %s in %s%s", task.task_type, task.id, task.attempt,
             outcome.status.value, took, detail)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
