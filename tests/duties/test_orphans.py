"""OrphanSweeper: a PENDING row that no queue tracks is re-queued, once it has been left alone
for ``min_age`` (a create in flight pushes its own id a moment after the insert)."""

from __future__ import annotations

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.placement import queue_item
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.orphans import OrphanSweeper
from conveyor.store.sql import SqlStore

from .conftest import WORKER, Clock, Tasks, delayed_count, queued_ids

MIN_AGE = 10.0


def orphan_sweeper(store: SqlStore, coord: Coordination, elector: Elector,
                   batch: int = 500) -> OrphanSweeper:
    return OrphanSweeper(store.sweeps, coord, elector, interval=30.0, min_age=MIN_AGE,
                         batch=batch)


@pytest.fixture
def sweeper(store: SqlStore, coord: Coordination, leader: Elector) -> OrphanSweeper:
    return orphan_sweeper(store, coord, leader)


async def test_an_untracked_pending_row_is_requeued(
    sweeper: OrphanSweeper, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    [t] = await tasks.pending()
    clock.now += MIN_AGE + 1
    await sweeper.run_once(clock.now)
    assert await queued_ids(coord) == [t.id] and sweeper.requeued == 1


async def test_a_row_younger_than_min_age_is_left_to_its_create(
    sweeper: OrphanSweeper, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    await tasks.pending()
    clock.now += MIN_AGE
    await sweeper.run_once(clock.now)
    assert await queued_ids(coord) == [] and sweeper.requeued == 0


async def test_tracked_rows_are_not_pushed_again(
    sweeper: OrphanSweeper, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    """Queued, delayed, in a worker queue, fetched into an active list: each is somebody's."""
    queued, delayed, assigned, fetched = await tasks.pending(4)
    await coord.queues.enqueue([queue_item(queued)])
    await coord.queues.schedule([(queue_item(delayed), clock.now + 600)])
    await tasks.deliver([fetched, assigned])
    await coord.worker_queues.fetch(WORKER, 1, 0.0)
    clock.now += MIN_AGE + 1
    assert await sweeper.sweep(clock.now, MIN_AGE) == 0
    assert await queued_ids(coord) == [queued.id] and await delayed_count(coord) == 1


async def test_an_orphan_due_later_goes_back_to_the_delayed_set(
    sweeper: OrphanSweeper, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    """A ``run_at`` task (or a retry waiting out its backoff) whose delayed entry was lost."""
    await tasks.pending(run_at=clock.now + 600)
    clock.now += MIN_AGE + 1
    await sweeper.run_once(clock.now)
    assert await queued_ids(coord) == [] and await delayed_count(coord) == 1


async def test_rows_that_are_not_pending_are_nobody_s_orphans(
    sweeper: OrphanSweeper, tasks: Tasks, store: SqlStore, coord: Coordination, clock: Clock
) -> None:
    await tasks.running()
    [cancelled] = await tasks.pending()
    await store.moves.cancel_pending(cancelled.id, clock.now, "cancelled")
    clock.now += MIN_AGE + 1
    await sweeper.run_once(clock.now)
    assert await queued_ids(coord) == [] and (await tasks.get(cancelled.id)).status == (
        TaskStatus.CANCELLED
    )


async def test_one_sweep_pages_past_its_batch_size(
    store: SqlStore, coord: Coordination, leader: Elector, tasks: Tasks, clock: Clock
) -> None:
    """Pages of two over seven rows, tracked ones among them: every orphan is found."""
    made = await tasks.pending(7)
    await coord.queues.enqueue([queue_item(made[0]), queue_item(made[3])])
    clock.now += MIN_AGE + 1
    sweeper = orphan_sweeper(store, coord, leader, batch=2)
    assert await sweeper.sweep(clock.now, MIN_AGE) == 5
    assert sorted(await queued_ids(coord)) == sorted(t.id for t in made)


async def test_a_restart_sweep_takes_rows_of_any_age(
    sweeper: OrphanSweeper, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    """A standalone restart re-queues at once (``min_age=0``): its queues start empty."""
    [t] = await tasks.pending()
    clock.now += 0.001
    assert await sweeper.sweep(clock.now, min_age=0.0) == 1
    assert await queued_ids(coord) == [t.id]


async def test_a_scheduler_without_the_lease_does_nothing(
    store: SqlStore, coord: Coordination, standby: Elector, tasks: Tasks, clock: Clock
) -> None:
    await tasks.pending()
    clock.now += MIN_AGE + 1
    await orphan_sweeper(store, coord, standby).run_once(clock.now)
    assert await queued_ids(coord) == []
