"""Processor: fetch from this worker's queue, start in the store, run, hand the outcome to the
finisher. What it decides: how much to take (capacity counts outcomes not yet written), how an
attempt ended and whether it is retried, and what to do with an id it could not start."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.errors import BackendUnavailable
from conveyor.models import Task, TaskConfig, TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.timeouts import TimeoutSweeper
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from conveyor.worker.completions import Completions
from conveyor.worker.finisher import Finisher
from conveyor.worker.processor import Processor, StopReason

from .conftest import WORKER, Clock, Scripted, Tasks, offline, settle

BLOCKS = {"blocks": True}


async def deliver_and_run(tasks: Tasks, processor: Processor, clock: Clock, n: int = 1,
                          **changes: Any) -> list[Task]:
    """Deliver ``n`` tasks with ``changes`` to the worker and give the processor one pass."""
    made = await tasks.pending(n, **changes)
    await tasks.deliver(made)
    await processor.run_once(clock.now)
    return made


async def outcome_of(tasks: Tasks, processor: Processor, completions: Completions,
                     clock: Clock, **changes: Any) -> Outcome:
    """Run one task with ``changes`` to its end; return the outcome handed to the finisher."""
    [t] = await deliver_and_run(tasks, processor, clock, **changes)
    await settle(processor)
    [(outcome, item)] = completions.take(10)
    assert outcome is not None and item.task_id == t.id
    return outcome


async def test_a_fetched_task_is_started_in_the_store_and_run(
    tasks: Tasks, processor: Processor, completions: Completions, executor: Scripted,
    clock: Clock,
) -> None:
    [t] = await deliver_and_run(tasks, processor, clock, payload=BLOCKS)
    started = await tasks.get(t.id)
    assert (started.status, started.worker_id, started.started_at, started.attempt) == (
        TaskStatus.PROCESSING, WORKER, clock.now, 1
    )
    assert set(processor.running) == set(processor.claimed) == {t.id} and processor.load == 1
    await executor.reached(1)
    assert executor.ran == [(t.id, 1)]


async def test_a_result_is_a_success(
    tasks: Tasks, processor: Processor, completions: Completions, clock: Clock
) -> None:
    outcome = await outcome_of(tasks, processor, completions, clock, payload={"returns": [1]})
    assert (outcome.status, outcome.result, outcome.attempt, outcome.worker_id) == (
        TaskStatus.SUCCESS, [1], 1, WORKER
    )


async def test_an_error_is_a_failure_retried_after_the_type_s_backoff(
    tasks: Tasks, processor: Processor, completions: Completions, clock: Clock
) -> None:
    outcome = await outcome_of(tasks, processor, completions, clock, payload={"raises": "boom"})
    assert (outcome.status, outcome.error) == (TaskStatus.FAILED, "RuntimeError: boom")
    assert outcome.retry_at == clock.now + 10.0 and outcome.spend_retry


async def test_an_error_without_retries_left_is_final(
    tasks: Tasks, processor: Processor, completions: Completions, clock: Clock
) -> None:
    outcome = await outcome_of(tasks, processor, completions, clock, payload={"raises": "boom"},
                               max_retries=1, retry_count=1)
    assert (outcome.status, outcome.retry_at) == (TaskStatus.FAILED, None)


@pytest.mark.parametrize(("payload", "error"), [
    ({"permanent": "bad input"}, "PermanentError: bad input"),
    ({"returns_set": [1]}, "PermanentError: the result is not JSON serialisable"),
])
async def test_a_permanent_failure_is_not_retried(
    tasks: Tasks, processor: Processor, completions: Completions, clock: Clock,
    payload: dict[str, Any], error: str,
) -> None:
    outcome = await outcome_of(tasks, processor, completions, clock, payload=payload)
    assert (outcome.status, outcome.retry_at) == (TaskStatus.FAILED, None)
    assert outcome.error is not None and outcome.error.startswith(error)


async def test_a_type_whose_executor_is_unknown_fails_for_good(
    tasks: Tasks, processor: Processor, completions: Completions, store: SqlStore, clock: Clock
) -> None:
    await store.configs.put_config(TaskConfig("elsewhere", executor="nowhere"))
    outcome = await outcome_of(tasks, processor, completions, clock, task_type="elsewhere")
    assert (outcome.status, outcome.retry_at) == (TaskStatus.FAILED, None)
    assert "no executor named 'nowhere'" in (outcome.error or "")


async def test_an_attempt_past_its_timeout_is_stopped_and_retried(
    tasks: Tasks, processor: Processor, completions: Completions, clock: Clock
) -> None:
    """The one real wait in the folder: the task's own 10 ms timeout."""
    outcome = await outcome_of(tasks, processor, completions, clock, payload=BLOCKS,
                               timeout=0.01)
    assert (outcome.status, outcome.error) == (TaskStatus.TIMEOUT, "timed out after 0.01s")
    assert outcome.retry_at == clock.now + 10.0 and outcome.spend_retry


async def test_a_cancelled_attempt_ends_cancelled(
    tasks: Tasks, processor: Processor, completions: Completions, executor: Scripted,
    clock: Clock,
) -> None:
    [t] = await deliver_and_run(tasks, processor, clock, payload=BLOCKS)
    await executor.reached(1)
    assert processor.interrupt(t.id, StopReason.CANCELLED)
    await settle(processor)
    [(outcome, _)] = completions.take(10)
    assert outcome is not None
    assert (outcome.status, outcome.retry_at) == (TaskStatus.CANCELLED, None)


async def test_a_shutdown_reruns_the_attempt_without_spending_a_retry(
    tasks: Tasks, processor: Processor, completions: Completions, executor: Scripted,
    clock: Clock,
) -> None:
    await deliver_and_run(tasks, processor, clock, 2, payload=BLOCKS)
    await executor.reached(2)
    await processor.drain(0.0)
    assert processor.running == {}
    for outcome, _ in completions.take(10):
        assert outcome is not None and outcome.status == TaskStatus.TIMEOUT
        assert outcome.retry_at == clock.now + 10.0 and not outcome.spend_retry


async def test_capacity_bounds_what_is_fetched(
    tasks: Tasks, processor: Processor, coord: Coordination, clock: Clock
) -> None:
    """Capacity 3: five delivered, three taken; a full worker does not even ask for more."""
    await deliver_and_run(tasks, processor, clock, 5, payload=BLOCKS)
    assert processor.load == 3 and len(await coord.worker_queues.active(WORKER)) == 3
    await processor.run_once(clock.now)
    assert processor.load == 3 and len(await coord.worker_queues.active(WORKER)) == 3


async def test_outcomes_not_yet_written_still_hold_their_slots(
    tasks: Tasks, processor: Processor, finisher: Finisher, completions: Completions,
    clock: Clock,
) -> None:
    """A database outage must not let the worker pile up results it cannot write."""
    await deliver_and_run(tasks, processor, clock, 5, payload={"returns": 1})
    await settle(processor)
    assert processor.running == {} and len(completions) == 3
    await processor.run_once(clock.now)
    assert processor.load == 3 and len(completions) == 3
    await finisher.run_once(clock.now)
    assert processor.load == 0
    await processor.run_once(clock.now)
    assert processor.load == 2


async def test_an_empty_queue_is_a_short_pass(processor: Processor, clock: Clock) -> None:
    await processor.run_once(clock.now)
    assert processor.load == 0


Meanwhile = Callable[[SqlStore, Task, float], Awaitable[object]]


async def cancel(store: SqlStore, t: Task, now: float) -> object:
    return await store.moves.cancel_pending(t.id, now, "cancelled")


async def start_elsewhere(store: SqlStore, t: Task, now: float) -> object:
    return await store.moves.start([t.id], "w2", now)


@pytest.mark.parametrize("meanwhile", [cancel, start_elsewhere])
async def test_a_task_that_cannot_be_started_is_released_unrun(
    tasks: Tasks, processor: Processor, finisher: Finisher, completions: Completions,
    coord: Coordination, store: SqlStore, executor: Scripted, clock: Clock,
    meanwhile: Meanwhile,
) -> None:
    """Cancelled (or taken by another worker) between dispatch and start: the store refuses
    the start, and the id is released through the finisher with nothing to write."""
    [t] = await tasks.pending()
    await tasks.deliver([t])
    before = await meanwhile(store, t, clock.now)
    await processor.run_once(clock.now)
    assert processor.running == {} and executor.ran == []
    assert completions.take(10) == [(None, (await coord.worker_queues.active(WORKER))[0])]
    assert before is not None


async def test_a_failed_start_lets_go_of_the_fetched_ids(
    tasks: Tasks, processor: Processor, coord: Coordination, store: SqlStore, clock: Clock
) -> None:
    """They stay in the active list, where the reconciler finds them and hands them back."""
    [t] = await tasks.pending()
    await tasks.deliver([t])
    async with offline(store):
        with pytest.raises(BackendUnavailable):
            await processor.run_once(clock.now)
    assert not processor.claimed and processor.running == {}
    assert [i.task_id for i in await coord.worker_queues.active(WORKER)] == [t.id]
    assert (await tasks.get(t.id)).status == TaskStatus.PENDING


@pytest.mark.parametrize("turns", [0, 1], ids=["before-its-first-step", "reading-its-config"])
async def test_an_attempt_interrupted_before_it_reaches_the_executor_still_ends(
    tasks: Tasks, processor: Processor, completions: Completions, executor: Scripted,
    clock: Clock, turns: int,
) -> None:
    """A cancel can arrive the moment a task starts: before its attempt ran a single step, or
    while it reads the type's config. It must still end with an outcome: without one the row
    stays PROCESSING with its slot held for the life of the worker, until the timeout sweep
    reruns a task the user cancelled."""
    [t] = await deliver_and_run(tasks, processor, clock, payload=BLOCKS)
    for _ in range(turns):
        await asyncio.sleep(0)
    assert processor.interrupt(t.id, StopReason.CANCELLED)
    await settle(processor)
    assert processor.running == {} and executor.ran == []
    [(outcome, _)] = completions.take(10)
    assert outcome is not None and outcome.status == TaskStatus.CANCELLED


async def test_a_config_read_that_fails_reruns_the_attempt_without_spending_a_retry(
    tasks: Tasks, processor: Processor, completions: Completions, store: SqlStore,
    executor: Scripted, clock: Clock,
) -> None:
    """The database blinked between the start and the read of the type's config: the task
    never ran, so it must not fail for good (it has retries left) nor spend one."""
    async with offline(store, "task_config"):
        outcome = await outcome_of(tasks, processor, completions, clock, max_retries=0)
    assert executor.ran == []
    assert outcome.status == TaskStatus.FAILED and "config" in (outcome.error or "")
    assert outcome.retry_at is not None and not outcome.spend_retry


async def test_a_rerun_fetched_while_its_old_outcome_waits_keeps_its_own_slot(
    tasks: Tasks, processor: Processor, finisher: Finisher, store: SqlStore,
    outcomes: Outcomes, leader: Elector, executor: Scripted, clock: Clock,
) -> None:
    """Attempt 1 ended but its outcome could not be written for a while; the scheduler timed
    it out meanwhile and the rerun came back to this worker. Writing attempt 1's (refused)
    outcome releases attempt 1's claim only: attempt 2 still runs and must stay claimed, or
    the slot is counted free and the reconciler takes the running attempt for a lost one."""
    [t] = await deliver_and_run(tasks, processor, clock, payload=BLOCKS)
    await executor.reached(1)
    processor.interrupt(t.id, StopReason.SHUTDOWN)
    await settle(processor)
    clock.now += 36.0
    await TimeoutSweeper(store.sweeps, outcomes, leader, interval=5.0, grace=5.0,
                         batch=10).run_once(clock.now)
    await tasks.deliver([await tasks.get(t.id)])
    await processor.run_once(clock.now)
    assert (await tasks.get(t.id)).attempt == 2 and processor.load == 2
    await finisher.run_once(clock.now)
    assert t.id in processor.running and t.id in processor.claimed and processor.load == 1
