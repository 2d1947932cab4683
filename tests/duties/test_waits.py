"""WaitSweeper (docs/design.md §10): the leader cancels WAITING tasks past their deadline, a
page per transaction, going on a second later when a pass hit its cap; a follower does not;
children released by their policy ``run`` are queued."""

from __future__ import annotations

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.waits import WaitSweeper
from conveyor.store.sql import SqlStore

from .conftest import Clock, MakeElector, Tasks, queued_ids

S = TaskStatus


def sweeper(store: SqlStore, coord: Coordination, elector: Elector) -> WaitSweeper:
    return WaitSweeper(store.waits, coord.queues, elector, interval=30.0, batch=2,
                       pages_per_pass=2)


async def test_the_leader_cancels_overdue_waits_and_queues_what_they_release(
    store: SqlStore, tasks: Tasks, coord: Coordination, leader: Elector, clock: Clock
) -> None:
    [parent] = await tasks.pending()
    late = [(await tasks.pending(status=S.WAITING, parents=(parent.id,),
                                 wait_deadline=clock.now + 1))[0] for _ in range(5)]
    [runner] = await tasks.pending(status=S.WAITING, parents=(late[0].id,),
                                   on_parent_failure="run")
    duty = sweeper(store, coord, leader)
    await duty.run_once(clock.now)
    assert duty.cancelled == 0 and not duty.behind
    clock.now += 2
    await duty.run_once(clock.now)  # two pages of two: the cap, so it goes on soon
    assert duty.behind
    await duty.run_once(clock.now)
    assert not duty.behind
    assert [(await tasks.get(t.id)).status for t in late] == [S.CANCELLED] * 5
    assert await queued_ids(coord) == [runner.id]


async def test_a_follower_does_not_cancel(
    store: SqlStore, tasks: Tasks, coord: Coordination, make_elector: MakeElector, clock: Clock
) -> None:
    [parent] = await tasks.pending()
    [kid] = await tasks.pending(status=S.WAITING, parents=(parent.id,),
                                wait_deadline=clock.now - 1)
    duty = sweeper(store, coord, make_elector("other"))
    await duty.run_once(clock.now)
    assert duty.cancelled == 0 and (await tasks.get(kid.id)).status == S.WAITING
