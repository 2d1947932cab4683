"""The leader's firing duty on a fake clock (docs/design.md §9, §8.11): one task per fire
whoever fires and however often, catch-up inside the window, each overlap policy with a task
slower than its interval, nothing from a standby."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.firing import Firing
from conveyor.schedules.cron import Trigger, next_fire
from conveyor.schedules.model import Overlap, Schedule, TaskTemplate
from conveyor.service import TaskService
from conveyor.store.protocol import Outcome
from conveyor.store.schema import task
from conveyor.store.sql import SqlStore
from tests.duties.conftest import JOB, WORKER, Clock, queued_ids


@pytest.fixture
def service(store: SqlStore, coord: Coordination, catalog: Catalog, settings: Settings,
            clock: Clock) -> TaskService:
    return TaskService(store, coord, catalog, settings, clock=clock)


def firing(store: SqlStore, coord: Coordination, service: TaskService,
           elector: Elector) -> Firing:
    return Firing(store.schedules, store.tasks, coord.queues, service, elector,
                  interval=1.0, batch=2)


async def put(store: SqlStore, clock: Clock, name: str = "tick", every: int = 1,
              **changes: object) -> Schedule:
    trigger = Trigger(every_seconds=every)
    s = Schedule(name=name, template=TaskTemplate(JOB, {"n": 1}), trigger=trigger,
                 next_fire_at=next_fire(trigger, clock.now), created_at=clock.now,
                 updated_at=clock.now)
    s = replace(s, **changes)  # type: ignore[arg-type]
    await store.schedules.put(s)
    return s


async def keys(store: SqlStore) -> list[str]:
    async with store.db.connect() as conn:
        rows = await conn.execute(sa.select(task.c.idempotency_key).order_by(task.c.run_at))
        return [r[0] for r in rows]


async def outcomes(store: SqlStore, name: str = "tick") -> list[str]:
    return [str(f.outcome) for f in reversed(await store.schedules.fires("default", name, 100))]


async def test_one_task_per_fire_however_often_a_pass_runs(
    store: SqlStore, coord: Coordination, service: TaskService, leader: Elector, clock: Clock,
) -> None:
    await put(store, clock, overlap=Overlap.ALLOW)  # the tasks stay PENDING: no worker here
    duty = firing(store, coord, service, leader)
    for _ in range(3):
        clock.now += 1
        await duty.run_once(clock.now)
        await duty.run_once(clock.now)
    other = firing(store, coord, service, leader)  # a second firer, as after a hand-over
    await other.run_once(clock.now)
    assert await keys(store) == [
        "schedule:tick:1970-01-12T13:46:41Z", "schedule:tick:1970-01-12T13:46:42Z",
        "schedule:tick:1970-01-12T13:46:43Z"]
    assert len(await queued_ids(coord)) == 3
    [s] = await store.schedules.list_schedules(None)
    assert s.next_fire_at == clock.now + 1 and s.last_fire_at == clock.now


async def test_a_standby_fires_nothing(
    store: SqlStore, coord: Coordination, service: TaskService, standby: Elector, clock: Clock,
) -> None:
    await put(store, clock)
    clock.now += 5
    await firing(store, coord, service, standby).run_once(clock.now)
    assert await keys(store) == []


async def test_batches_cover_every_due_schedule(
    store: SqlStore, coord: Coordination, service: TaskService, leader: Elector, clock: Clock,
) -> None:
    for i in range(5):
        await put(store, clock, name=f"s{i}", every=60)
    clock.now += 60
    await firing(store, coord, service, leader).run_once(clock.now)
    assert len(await keys(store)) == 5


async def test_catch_up_fires_inside_the_window_and_records_the_rest_missed(
    store: SqlStore, coord: Coordination, service: TaskService, leader: Elector, clock: Clock,
) -> None:
    await put(store, clock, every=10, catchup_window=30.0, overlap=Overlap.ALLOW)
    clock.now += 100  # no leader for 100 s: ten fires due, four within the 30 s window
    duty = firing(store, coord, service, leader)
    await duty.run_once(clock.now)
    assert await outcomes(store) == ["missed"] * 6 + ["fired"] * 4
    assert len(await keys(store)) == 4
    [s] = await store.schedules.list_schedules(None)
    assert s.missed == 6 and duty.outcomes == {"missed": 6, "fired": 4}


async def test_a_fire_of_an_unknown_type_fails_alone(
    store: SqlStore, coord: Coordination, service: TaskService, leader: Elector, clock: Clock,
) -> None:
    await put(store, clock, name="gone", template=TaskTemplate("no-such-type"))
    await put(store, clock, name="fine")
    clock.now += 1
    await firing(store, coord, service, leader).run_once(clock.now)
    assert await outcomes(store, "gone") == ["failed"]
    assert await outcomes(store, "fine") == ["fired"]


async def start_last(store: SqlStore, clock: Clock) -> str:
    [s] = await store.schedules.list_schedules(None)
    assert s.last_task_id is not None
    await store.moves.start([s.last_task_id], WORKER, clock.now)
    return s.last_task_id


async def finish(store: SqlStore, task_id: str, clock: Clock) -> None:
    await store.moves.finish([Outcome(task_id, 1, TaskStatus.SUCCESS, worker_id=WORKER)],
                             clock.now)


@pytest.mark.parametrize(("policy", "expected", "tasks"), [
    (Overlap.SKIP, ["fired", "skipped", "skipped", "fired"], 2),
    (Overlap.BUFFER_ONE, ["fired", "fired", "skipped", "fired"], 3),
    (Overlap.BUFFER_ALL, ["fired", "fired", "fired", "fired"], 4),
    (Overlap.CANCEL_OTHER, ["fired", "fired", "fired", "fired"], 4),
    (Overlap.ALLOW, ["fired", "fired", "fired", "fired"], 4),
])
async def test_overlap_policies_with_a_task_slower_than_its_interval(
    store: SqlStore, coord: Coordination, service: TaskService, leader: Elector, clock: Clock,
    policy: Overlap, expected: list[str], tasks: int,
) -> None:
    await put(store, clock, overlap=policy)
    duty = firing(store, coord, service, leader)
    clock.now += 1
    await duty.run_once(clock.now)            # fire 1; its task starts and runs on
    slow = await start_last(store, clock)
    for _ in range(2):                         # fires 2 and 3 come while it runs
        clock.now += 1
        await duty.run_once(clock.now)
    first = await store.tasks.get(slow)
    assert first is not None
    if policy == Overlap.CANCEL_OTHER:
        assert first.status == TaskStatus.PROCESSING  # signalled; its worker records it
    else:
        await finish(store, slow, clock)
    for _ in range(3):                         # it ended: what waited fires (and ends)
        await duty.run_once(clock.now)
        [s] = await store.schedules.list_schedules(None)
        if s.last_task_id and s.last_task_id != slow:
            await store.moves.start([s.last_task_id], WORKER, clock.now)
            await finish(store, s.last_task_id, clock)
    clock.now += 1
    await duty.run_once(clock.now)
    assert await outcomes(store) == expected
    assert len(await keys(store)) == tasks
