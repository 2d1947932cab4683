"""Processor: take ids from this worker's queue, start them in the store, run them.

Capacity bounds what is held at once (running plus finished-but-unwritten). Each attempt is one
asyncio task (its runner) under the task's timeout, and it hands its outcome to the finisher
whatever way it ends. A cancel request, a shutdown or the timeout stops it, and the reason
decides the outcome (CANCELLED, TIMEOUT, or a rerun that spends no retry). The runner itself is
cancelled only while it is inside the executor call: a stop that lands before the task ran its
first step, or while it reads its type's config, is kept as the reason and seen before the
call begins, so the attempt still ends with an outcome and frees its slot. An interrupt can
also land while the start is being committed, before the attempt exists here: it is kept for
the id and handed to the attempt as soon as the start returns.

Stopped means stopped (docs/design.md §8.13): on timeout or interrupt the executor call is
cancelled and the outcome is recorded only once that call has ended, so no code of an attempt
runs after its TIMEOUT or CANCELLED is written, and its slot stays taken until then. Executors
stop at once (an HTTP or gRPC call is aborted, a plain function's process is killed); an async
function that swallows ``CancelledError``, or a function run with ``isolation="thread"``, cannot
be stopped: it is reported (log and ``unstoppable``) and keeps its slot while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import orjson
import structlog

from conveyor.catalog import Catalog
from conveyor.coordination.protocol import AttemptRef, WorkerQueues
from conveyor.duty import Duty
from conveyor.errors import BackendUnavailable, PermanentError
from conveyor.executors.registry import ExecutorRegistry
from conveyor.executors.subprocess_pool import Described
from conveyor.models import Backoff, QueueItem, Task, TaskStatus
from conveyor.observability import tracing
from conveyor.outcomes import Outcomes
from conveyor.store.protocol import Outcome, TaskMoves
from conveyor.worker.completions import Completions

log = logging.getLogger(__name__)


#: How long an interrupted executor call may take to end before it is reported as unstoppable.
STOP_GRACE = 1.0


class StopReason(Enum):
    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"


@dataclass
class Running:
    """One attempt in flight: its runner, and what stopping it has reached.

    One task an attempt, not a runner watching a task of the executor call: the second task,
    the future it woke the runner with and their callbacks were a good part of the worker's
    CPU per task. So the runner runs the call itself and is cancelled to stop it, but only
    while it is inside the call (``calling``); before, the reason alone is kept and read just
    before the call starts."""

    task: Task
    runner: asyncio.Task[None] | None = None
    reason: StopReason | None = None
    calling: bool = False  # inside the executor call: stopping cancels the runner
    stopped: bool = False  # the runner was cancelled to stop the call (a stop, the timeout)
    overdue: bool = False  # the call did not end within STOP_GRACE of being stopped


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
        self.running: dict[str, Running] = {}
        self._launching: dict[str, StopReason | None] = {}  # start in flight: reason, if asked
        self.unstoppable = 0  # attempts that ran on after being told to stop (a metric)
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
        self._launching.update(dict.fromkeys(by_id))
        try:
            started = await self._moves.start(list(by_id), self.worker_id, self.clock())
        except BaseException:
            # Let go of them: the reconciler returns ids left in the active list to the queue.
            self._unclaim(item.task_id for item in items)
            raise
        finally:
            asked = {task_id: self._launching.pop(task_id, None) for task_id in by_id}
        for t in started:
            running = self.running[t.id] = Running(t, reason=asked[t.id])
            running.runner = asyncio.create_task(self._run(running, by_id.pop(t.id)))
        # Cancelled, finished or taken by another worker meanwhile, or a twin of one started.
        for item in [*by_id.values(), *twins]:
            self._completions.add(None, item)

    def attempts(self) -> list[AttemptRef]:
        """The attempts running now, as cancel requests name them."""
        return [AttemptRef(task_id, r.task.attempt) for task_id, r in self.running.items()]

    def interrupt(self, task_id: str, reason: StopReason, attempt: int | None = None) -> bool:
        """Ask a running attempt to stop; ``attempt`` (a cancel names one) must be the one
        running, so a request meant for an earlier attempt never stops a retry."""
        if task_id in self._launching:
            if self._launching[task_id] is None:
                self._launching[task_id] = reason
            return True
        running = self.running.get(task_id)
        if running is None or (attempt is not None and attempt != running.task.attempt):
            return False
        if running.reason is None:
            running.reason = reason
        self._stop_call(running)
        return True

    def _stop_call(self, running: Running) -> None:
        """Cancel the executor call if it is under way (else the reason, set already, keeps
        it from starting), and watch that it ends in time."""
        if not running.calling or running.stopped or running.runner is None:
            return
        running.stopped = True
        running.runner.cancel()
        asyncio.get_running_loop().call_later(STOP_GRACE, self._overdue, running)

    def _overdue(self, running: Running) -> None:
        if running.calling:
            running.overdue = True
            self._unstoppable(running.task, "it keeps its slot until it returns")

    def runners(self) -> list[asyncio.Task[None]]:
        return [r.runner for r in self.running.values() if r.runner is not None]

    async def drain(self, grace: float) -> None:
        """Let running attempts finish for ``grace`` seconds, then interrupt the rest."""
        if self.running:
            await asyncio.wait(self.runners(), timeout=grace)
        for task_id in list(self.running):
            self.interrupt(task_id, StopReason.SHUTDOWN)
        if self.running:
            await asyncio.wait(self.runners(), timeout=5.0)

    async def _run(self, running: Running, item: QueueItem) -> None:
        task = running.task
        # Each attempt is its own asyncio task with its own copy of the context, so what is
        # bound here is this attempt's alone and goes with its task (nothing to unbind): every
        # line logged while it runs (the task's own too) carries it.
        structlog.contextvars.bind_contextvars(
            task_id=task.id, task_type=task.task_type, attempt=task.attempt,
            worker_id=self.worker_id,
        )
        began = time.monotonic()
        with tracing.span(
            "conveyor.attempt", parent=task.metadata, task_id=task.id,
            task_type=task.task_type, attempt=task.attempt, worker=self.worker_id,
        ) as marks:
            try:
                outcome = await self._attempt(running)
            except Exception as exc:  # a bug in our own code: record it, never lose it
                log.exception("unexpected error running task %s", task.id)
                outcome = Outcome(task.id, task.attempt, TaskStatus.FAILED,
                                  error=repr(exc), worker_id=self.worker_id, task=task)
            finally:
                self.running.pop(task.id, None)
            marks.note(status=str(outcome.status))
            if outcome.status != TaskStatus.SUCCESS:
                marks.fail(outcome.error or str(outcome.status))
        _log_finished(task, outcome, time.monotonic() - began)
        self._completions.add(outcome, item)

    async def _attempt(self, running: Running) -> Outcome:
        task = running.task
        try:
            spec = await self._catalog.spec(task.task_type, task.tenant)
        except BackendUnavailable as unread:  # it never ran: a rerun that spends no retry
            return self._failed(task, TaskStatus.FAILED, f"could not read the type's config: "
                                f"{unread}", True, self._outcomes.policy(None),
                                lost_to_crash=True)
        backoff = self._outcomes.policy(spec)
        if running.reason is not None:  # interrupted before it began: never start the executor
            return self._interrupted(task, backoff, running.reason)
        executor, config = (spec.executor, dict(spec.executor_config)) if spec else ("python", {})
        timer = asyncio.get_running_loop().call_later(task.timeout, self._stop_call, running)
        running.calling = True
        try:
            result = await self._execute(task, executor, config)
        except asyncio.CancelledError:
            runner = asyncio.current_task()
            if not running.stopped or runner is None:  # the loop itself is going away
                raise
            runner.uncancel()  # the one cancel was ours, and it is answered here
            return self._stopped(running, backoff)
        except Exception as exc:
            if running.stopped:
                self._ended_on_its_own(running)
                return self._stopped(running, backoff)
            retryable = not isinstance(exc, PermanentError)
            return self._failed(task, TaskStatus.FAILED, _describe(exc), retryable, backoff)
        finally:
            running.calling = False
            timer.cancel()
        if running.stopped:
            self._ended_on_its_own(running)
            return self._stopped(running, backoff)
        return Outcome(task.id, task.attempt, TaskStatus.SUCCESS, result=result,
                       worker_id=self.worker_id, task=task)

    async def _execute(self, task: Task, executor: str, config: dict[str, object]) -> object:
        # A child of the attempt's span (the runner copied the context); HTTP and gRPC
        # executors pass it on (``tracing.outgoing``), so the called service's spans join.
        with tracing.span(f"conveyor.execute {executor}", executor=executor):
            result = await self._executors.get(executor).execute(task, config)
        try:
            orjson.dumps(result)
        except TypeError as exc:
            raise PermanentError(f"the result is not JSON serialisable: {exc}") from exc
        return result

    def _stopped(self, running: Running, backoff: Backoff) -> Outcome:
        """The outcome of a call stopped by a request (its reason) or by the timeout."""
        task = running.task
        if running.reason is not None:
            return self._interrupted(task, backoff, running.reason)
        return self._failed(task, TaskStatus.TIMEOUT, f"timed out after {task.timeout:g}s",
                            True, backoff)

    def _ended_on_its_own(self, running: Running) -> None:
        """A stopped call that returned or raised rather than being cancelled ignored the stop
        (it swallowed ``CancelledError``): reported, unless its overrun was already."""
        if not running.overdue:
            self._unstoppable(running.task, "it ended on its own")

    def _unstoppable(self, task: Task, how: str) -> None:
        self.unstoppable += 1
        log.warning(
            "task %s attempt %d did not stop when told to (an async function that swallows "
            "CancelledError, or a plain function run with isolation=\"thread\"); %s",
            task.id, task.attempt, how,
            extra={"task_id": task.id, "attempt": task.attempt, "worker_id": self.worker_id,
                   "task_type": task.task_type},
        )

    def _interrupted(self, task: Task, backoff: Backoff, reason: StopReason) -> Outcome:
        if reason is StopReason.CANCELLED:
            return Outcome(task.id, task.attempt, TaskStatus.CANCELLED,
                           error="cancelled while running", worker_id=self.worker_id, task=task)
        return self._failed(task, TaskStatus.TIMEOUT, "worker shut down before the task finished",
                            True, backoff, lost_to_crash=True)

    def _failed(self, task: Task, status: TaskStatus, error: str, retryable: bool,
                backoff: Backoff, *, lost_to_crash: bool = False) -> Outcome:
        return self._outcomes.failure(
            task, status, error, retryable=retryable, backoff=backoff, now=self.clock(),
            lost_to_crash=lost_to_crash, worker_id=self.worker_id,
        )


def _log_finished(task: Task, outcome: Outcome, seconds: float) -> None:
    """One INFO line per finished attempt (``--log-level WARNING`` silences them, and then
    nothing of it is formatted)."""
    if not log.isEnabledFor(logging.INFO):
        return
    took = f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"
    detail = ""
    if outcome.status != TaskStatus.SUCCESS:
        detail = f" ({'retry due' if outcome.retry_at is not None else 'final'}): {outcome.error}"
    log.info("task %s %s attempt %d: %s in %s%s", task.task_type, task.id, task.attempt,
             outcome.status.value, took, detail)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, Described):  # raised in a task process, already "Type: text"
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
