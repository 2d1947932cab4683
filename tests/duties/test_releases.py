"""ReleaseSweeper and the finish path (docs/design.md §10): a parent's final move releases
its children and ``Outcomes.record`` queues them after the commit; a release lost between the
commit and the push (kill -9), or never written by a finish, is made by the leader's sweep,
once."""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.orphans import OrphanSweeper
from conveyor.scheduler.releases import ReleaseSweeper
from conveyor.store.protocol import Outcome
from conveyor.store.sql import SqlStore

from .conftest import Clock, MakeElector, Tasks, queued_ids

MIN_AGE = 10.0
S = TaskStatus


def sweeper(store: SqlStore, coord: Coordination, elector: Elector) -> ReleaseSweeper:
    return ReleaseSweeper(store.deps, coord.queues, elector, interval=30.0, min_age=MIN_AGE,
                          batch=2, pages_per_pass=2)


async def test_a_finish_queues_the_children_it_released(
    tasks: Tasks, outcomes: Outcomes, coord: Coordination, clock: Clock
) -> None:
    [parent] = await tasks.running()
    [kid] = await tasks.pending(status=S.WAITING, parents=(parent.id,))
    await outcomes.record([Outcome(parent.id, 1, S.SUCCESS, result=1)], clock.now)
    assert await queued_ids(coord) == [kid.id]
    assert (await tasks.get(kid.id)).status == S.PENDING


async def test_the_sweep_releases_what_no_finish_did_and_only_once(
    store: SqlStore, tasks: Tasks, coord: Coordination, leader: Elector, clock: Clock
) -> None:
    parents = await tasks.pending(5)
    kids = [(await tasks.pending(status=S.WAITING, parents=(p.id,)))[0] for p in parents]
    async with store.db.begin() as conn:  # parents ended, their settles lost
        await conn.execute(sa.text("UPDATE task SET status = 'SUCCESS'"
                                   " WHERE status = 'PENDING'"))
    duty = sweeper(store, coord, leader)
    clock.now += MIN_AGE + 1
    await duty.run_once(clock.now)  # two pages of two: four released, the cursor kept
    assert duty.released == 4
    await duty.run_once(clock.now)
    assert duty.released == 5
    await duty.run_once(clock.now)
    assert duty.released == 5
    assert sorted(await queued_ids(coord)) == sorted(k.id for k in kids)


async def test_a_follower_does_not_sweep(
    store: SqlStore, tasks: Tasks, coord: Coordination, make_elector: MakeElector, clock: Clock
) -> None:
    follower = make_elector("other")  # never elected: no epoch
    [parent] = await tasks.pending()
    await tasks.pending(status=S.WAITING, parents=(parent.id,))
    clock.now += MIN_AGE + 1
    duty = sweeper(store, coord, follower)
    await duty.run_once(clock.now)
    assert duty.released == 0


async def test_a_crash_between_the_commit_and_the_push_loses_no_child(
    store: SqlStore, tasks: Tasks, coord: Coordination, leader: Elector, clock: Clock
) -> None:
    """The finish committed the release, the process died before ``place``: the child is a
    PENDING row no queue holds, and the orphan sweep queues it."""
    [parent] = await tasks.running()
    [kid] = await tasks.pending(status=S.WAITING, parents=(parent.id,))
    done = await store.moves.finish([Outcome(parent.id, 1, S.SUCCESS)], clock.now)
    assert [t.id for t in done.released] == [kid.id]  # ... and then kill -9
    assert await queued_ids(coord) == []
    clock.now += MIN_AGE + 1
    orphans = OrphanSweeper(store.sweeps, coord, leader, interval=30.0, min_age=MIN_AGE)
    await orphans.run_once(clock.now)
    assert await queued_ids(coord) == [kid.id]
