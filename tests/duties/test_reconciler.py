"""Reconciler: make the worker's records agree with what it really holds.

A fetch whose reply was lost leaves ids in the active list that the worker never received; a
start whose answer was lost leaves a row PROCESSING under a worker that does not run it. Either
is put right on its second sighting (the first may be a fetch or a start still in flight), and
nothing the processor claims is ever touched.
"""

from __future__ import annotations

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.store.sql import SqlStore
from conveyor.worker.reconciler import Reconciler

from .conftest import WORKER, Clock, Tasks, delayed_count, queued_ids


@pytest.fixture
def claimed() -> set[str]:
    """What the processor holds (``Processor.claimed``): the tests set it by hand."""
    return set()


@pytest.fixture
def reconciler(store: SqlStore, coord: Coordination, outcomes: Outcomes,
               claimed: set[str]) -> Reconciler:
    return Reconciler(WORKER, store.sweeps, coord, lambda: claimed, outcomes, interval=10.0)


async def test_a_lost_fetch_is_handed_back_on_the_second_sighting(
    reconciler: Reconciler, tasks: Tasks, coord: Coordination, claimed: set[str], clock: Clock
) -> None:
    await tasks.deliver(await tasks.pending(3))
    queues = coord.worker_queues
    lost = await queues.fetch(WORKER, 2, 0.0)  # moved to active; the worker never saw them
    kept = await queues.fetch(WORKER, 1, 0.0)
    claimed.update(i.task_id for i in kept)

    await reconciler.run_once(clock.now)
    assert len(await queues.active(WORKER)) == 3  # first sighting: maybe a reply in flight
    await reconciler.run_once(clock.now)
    assert await queues.active(WORKER) == kept
    assert (await coord.queues.lengths())["normal"] == 2
    assert sorted(await queued_ids(coord)) == sorted(i.task_id for i in lost)
    assert reconciler.returned == len(lost)


async def test_a_stray_claimed_before_its_second_sighting_is_left_alone(
    reconciler: Reconciler, tasks: Tasks, coord: Coordination, claimed: set[str], clock: Clock
) -> None:
    """The fetch was merely slow: its answer reached the processor between two passes."""
    await tasks.deliver(await tasks.pending())
    [item] = await coord.worker_queues.fetch(WORKER, 1, 0.0)
    await reconciler.run_once(clock.now)
    claimed.add(item.task_id)
    await reconciler.run_once(clock.now)
    claimed.clear()  # released meanwhile; seen again, it counts as a first sighting
    await reconciler.run_once(clock.now)
    assert await coord.worker_queues.active(WORKER) == [item] and reconciler.returned == 0


async def test_a_processing_row_the_worker_does_not_run_is_rerun(
    reconciler: Reconciler, tasks: Tasks, coord: Coordination, clock: Clock
) -> None:
    """The start committed, but its answer never reached the processor."""
    [t] = await tasks.running()
    await reconciler.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PROCESSING
    clock.now += 10.0
    await reconciler.run_once(clock.now)
    after = await tasks.get(t.id)
    assert (after.status, after.retry_count, after.run_at) == (
        TaskStatus.PENDING, 0, clock.now + 10.0
    )
    assert await delayed_count(coord) == 1
    logs = await tasks.logs(t.id)
    assert logs[-2].to_status == TaskStatus.TIMEOUT and logs[-2].worker_id == WORKER
    assert "lost track" in logs[-2].message


async def test_a_row_the_processor_runs_is_never_expired(
    reconciler: Reconciler, tasks: Tasks, claimed: set[str], clock: Clock
) -> None:
    [mine] = await tasks.running()
    [slow] = await tasks.running()
    claimed.add(mine.id)
    await reconciler.run_once(clock.now)
    claimed.add(slow.id)  # that start's answer arrived between two passes
    await reconciler.run_once(clock.now)
    assert {(await tasks.get(t.id)).status for t in (mine, slow)} == {TaskStatus.PROCESSING}


async def test_rows_of_other_workers_are_theirs(
    reconciler: Reconciler, tasks: Tasks, clock: Clock
) -> None:
    [t] = await tasks.running(worker_id="w2")
    await reconciler.run_once(clock.now)
    await reconciler.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PROCESSING
