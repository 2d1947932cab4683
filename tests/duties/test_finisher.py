"""Finisher: write finished attempts to the store, then ack them and free their slots.

Store first, ack second: a crash in between leaves the id active, so recovery re-queues it and
the store refuses the rerun. A batch the store could not take stays to be written later, so a
database outage delays results but never drops them.
"""

from __future__ import annotations

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.errors import BackendUnavailable
from conveyor.models import QueueItem, TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore
from conveyor.worker.completions import Completions
from conveyor.worker.finisher import Finisher
from conveyor.worker.processor import Processor

from .conftest import WORKER, Clock, Tasks, delayed_count, offline


async def held(tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
               clock: Clock, n: int = 1) -> list[QueueItem]:
    """``n`` tasks as the processor holds them while they run: fetched into the active list,
    claimed, and started in the store (attempt 1)."""
    made = await tasks.pending(n)
    items = await tasks.deliver(made)
    assert await coord.worker_queues.fetch(WORKER, n, 0.0) == items
    processor.claimed.update(i.task_id for i in items)
    await store.moves.start([t.id for t in made], WORKER, clock.now)
    return items


def succeeded(item: QueueItem, attempt: int = 1) -> Outcome:
    return Outcome(item.task_id, attempt, TaskStatus.SUCCESS, result="ok", worker_id=WORKER)


async def test_outcomes_are_written_then_acked_and_released(
    tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
    finisher: Finisher, completions: Completions, clock: Clock,
) -> None:
    [item] = await held(tasks, store, coord, processor, clock)
    completions.add(succeeded(item), item)
    clock.now += 2.0
    await finisher.run_once(clock.now)
    done = await tasks.get(item.task_id)
    assert (done.status, done.result, done.finished_at) == (TaskStatus.SUCCESS, "ok", clock.now)
    assert await coord.worker_queues.active(WORKER) == [] and not processor.claimed
    assert len(completions) == 0


async def test_a_retry_goes_back_to_the_delayed_set(
    tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
    finisher: Finisher, completions: Completions, outcomes: Outcomes, clock: Clock,
) -> None:
    [item] = await held(tasks, store, coord, processor, clock)
    running = await tasks.get(item.task_id)
    failed = outcomes.failure(running, TaskStatus.FAILED, "boom", retryable=True,
                              backoff=await outcomes.backoff(running), now=clock.now)
    completions.add(failed, item)
    await finisher.run_once(clock.now)
    after = await tasks.get(item.task_id)
    assert (after.status, after.retry_count, after.run_at) == (
        TaskStatus.PENDING, 1, clock.now + 10.0
    )
    assert await delayed_count(coord) == 1


async def test_nothing_to_write_is_only_released(
    tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
    finisher: Finisher, completions: Completions, clock: Clock,
) -> None:
    [item] = await held(tasks, store, coord, processor, clock)
    completions.add(None, item)
    await finisher.run_once(clock.now)
    assert (await tasks.get(item.task_id)).status == TaskStatus.PROCESSING
    assert await coord.worker_queues.active(WORKER) == [] and not processor.claimed


async def test_the_answer_of_a_superseded_attempt_is_refused_but_still_released(
    tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
    finisher: Finisher, completions: Completions, clock: Clock,
) -> None:
    """Attempt 1 was timed out by the scheduler meanwhile; its late success changes nothing,
    and its slot must still be freed."""
    [item] = await held(tasks, store, coord, processor, clock)
    completions.add(succeeded(item, attempt=0), item)
    await finisher.run_once(clock.now)
    assert (await tasks.get(item.task_id)).status == TaskStatus.PROCESSING
    assert not processor.claimed


async def test_one_pass_writes_every_batch(
    tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
    outcomes: Outcomes, completions: Completions, clock: Clock,
) -> None:
    items = await held(tasks, store, coord, processor, clock, 5)
    for item in items:
        completions.add(succeeded(item), item)
    finisher = Finisher(WORKER, outcomes, coord.worker_queues, completions, processor.release,
                        batch=2)
    await finisher.run_once(clock.now)
    assert {(await tasks.get(i.task_id)).status for i in items} == {TaskStatus.SUCCESS}
    assert len(completions) == 0 and processor.load == 0


async def test_a_batch_the_store_refused_is_kept_and_written_later(
    tasks: Tasks, store: SqlStore, coord: Coordination, processor: Processor,
    finisher: Finisher, completions: Completions, clock: Clock,
) -> None:
    """Nothing is acked or released while the database is away: the ids stay active and
    their slots held, so recovery and capacity both still see them."""
    items = await held(tasks, store, coord, processor, clock, 2)
    for item in items:
        completions.add(succeeded(item), item)
    async with offline(store):
        with pytest.raises(BackendUnavailable):
            await finisher.run_once(clock.now)
    assert len(completions) == 2 and processor.load == 2
    assert await coord.worker_queues.active(WORKER) == items
    assert {(await tasks.get(i.task_id)).status for i in items} == {TaskStatus.PROCESSING}
    await finisher.run_once(clock.now)
    assert {(await tasks.get(i.task_id)).status for i in items} == {TaskStatus.SUCCESS}
    assert len(completions) == 0 and processor.load == 0
