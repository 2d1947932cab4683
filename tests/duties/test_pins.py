"""PinSweeper (docs/design.md §10): the leader cancels the PENDING broadcast copies of a worker
that is no longer live and takes them off the queues; a live worker's copies, and any copy on
a follower's watch, are left alone."""

from __future__ import annotations

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus, WorkerInfo
from conveyor.placement import place
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.pins import PinSweeper
from conveyor.store.sql import SqlStore

from .conftest import Clock, MakeElector, Tasks, queued_ids

S = TaskStatus


def sweeper(store: SqlStore, coord: Coordination, elector: Elector) -> PinSweeper:
    return PinSweeper(store.pins, coord, elector, interval=30.0, batch=2, pages_per_pass=1)


async def test_the_copies_of_a_gone_worker_are_cancelled_and_dequeued(
    store: SqlStore, tasks: Tasks, coord: Coordination, leader: Elector, clock: Clock
) -> None:
    await coord.registry.heartbeat(WorkerInfo("alive", "h", 1, 4), 60)
    kept = await tasks.pending(pinned_worker="alive")
    lost = await tasks.pending(3, pinned_worker="gone")
    await place(coord.queues, kept + lost, clock.now)
    duty = sweeper(store, coord, leader)
    await duty.run_once(clock.now)  # one page of two: the cap, so it goes on soon
    assert duty.behind and duty.cancelled == 2
    await duty.run_once(clock.now)
    assert not duty.behind and duty.cancelled == 3
    assert [(await tasks.get(t.id)).status for t in lost] == [S.CANCELLED] * 3
    assert "gone" in (await tasks.get(lost[0].id)).error
    assert await queued_ids(coord) == [kept[0].id]


async def test_a_follower_cancels_nothing(
    store: SqlStore, tasks: Tasks, coord: Coordination, make_elector: MakeElector, clock: Clock
) -> None:
    [copy] = await tasks.pending(pinned_worker="gone")
    await sweeper(store, coord, make_elector("other")).run_once(clock.now)
    assert (await tasks.get(copy.id)).status == S.PENDING
