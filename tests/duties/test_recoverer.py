"""Recoverer: take back what dead workers held, and only theirs.

A worker is dead when its registry heartbeat lapsed (its queued ids go back at once) and, for
its running attempts, when the store's record agrees (no SQL heartbeat for a TTL, or marked
dead or stopped): a Redis that lost its data must not make every running task look orphaned.
Lost attempts are rerun without spending a retry; a refused epoch means someone else leads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.models import Task, TaskStatus, WorkerInfo
from conveyor.outcomes import Outcomes
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.recoverer import Recoverer
from conveyor.store.sql import SqlStore

from .conftest import WORKER, Clock, MakeElector, Tasks, delayed_count, queued_ids

TTL = 30.0
INFO = WorkerInfo(WORKER, "host", 1, capacity=4)


def recoverer(store: SqlStore, coord: Coordination, outcomes: Outcomes,
              elector: Elector) -> Recoverer:
    return Recoverer(store, coord, outcomes, elector, interval=5.0, heartbeat_ttl=TTL,
                     late_after=TTL / 2)


@pytest.fixture
def sweep(store: SqlStore, coord: Coordination, outcomes: Outcomes, leader: Elector) -> Recoverer:
    return recoverer(store, coord, outcomes, leader)


async def beat(store: SqlStore, coord: Coordination, clock: Clock, *, registry: bool = True,
               record: bool = True) -> None:
    """One heartbeat of the worker, to the live registry, the store's record, or both."""
    if registry:
        await coord.registry.heartbeat(INFO, TTL)
    if record:
        await store.workers.record_workers([INFO], "alive", clock.now)


async def holding(tasks: Tasks, store: SqlStore, coord: Coordination,
                  clock: Clock) -> tuple[Task, Task]:
    """The worker holds two tasks: one still waiting in its queue, one fetched and started."""
    [running, waiting] = await tasks.pending(2)
    await tasks.deliver([running, waiting])
    assert [i.task_id for i in await coord.worker_queues.fetch(WORKER, 1, 0.0)] == [running.id]
    await store.moves.start([running.id], WORKER, clock.now)
    return waiting, running


async def test_an_expired_worker_is_reaped_and_its_running_attempt_rerun_for_free(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, coord: Coordination, leader: Elector,
    clock: Clock,
) -> None:
    await beat(store, coord, clock)
    waiting, running = await holding(tasks, store, coord, clock)
    clock.now += TTL + 1
    await sweep.run_once(clock.now)

    assert await coord.registry.expired_workers(clock.now) == []  # forgotten
    assert await queued_ids(coord) == [waiting.id]  # straight back to its queue
    [record] = await store.workers.list_worker_records()
    assert (record.state, record.state_changed_at) == ("dead", clock.now)
    rerun = await tasks.get(running.id)
    assert (rerun.status, rerun.retry_count, rerun.run_at) == (
        TaskStatus.PENDING, 0, clock.now + 10.0
    )
    assert await delayed_count(coord) == 1
    lost = (await tasks.logs(rerun.id))[-2]
    assert lost.to_status == TaskStatus.TIMEOUT and lost.epoch == leader.epoch
    assert f"worker {WORKER} stopped answering" in lost.message
    assert sweep.recovered == 1


async def test_an_id_taken_but_never_started_goes_back_with_the_queued_ones(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, coord: Coordination, clock: Clock
) -> None:
    """The worker died between its fetch (the id in its active list) and its start's commit:
    the row is still PENDING, which the PROCESSING sweep never looks at."""
    await beat(store, coord, clock)
    [taken, waiting] = await tasks.pending(2)
    await tasks.deliver([taken, waiting])
    assert [i.task_id for i in await coord.worker_queues.fetch(WORKER, 1, 0.0)] == [taken.id]
    clock.now += TTL + 1
    await sweep.run_once(clock.now)
    assert sorted(await queued_ids(coord)) == sorted([taken.id, waiting.id])
    assert (await tasks.get(taken.id)).status == TaskStatus.PENDING
    assert sweep.recovered == 0


async def test_a_lost_attempt_spends_no_retry_even_when_none_are_left(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, coord: Coordination, clock: Clock
) -> None:
    """The task never got a fair run: a crash is not the task's failure."""
    await beat(store, coord, clock)
    [t] = await tasks.running(max_retries=1, retry_count=1)
    clock.now += TTL + 1
    await sweep.run_once(clock.now)
    after = await tasks.get(t.id)
    assert (after.status, after.retry_count) == (TaskStatus.PENDING, 1)


async def test_a_live_worker_keeps_its_tasks_even_with_a_stale_record(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, coord: Coordination, clock: Clock
) -> None:
    """Its SQL heartbeat lags (say the database was slow), but the registry sees it alive."""
    await beat(store, coord, clock)
    _waiting, running = await holding(tasks, store, coord, clock)
    clock.now += TTL + 1
    await beat(store, coord, clock, record=False)
    await sweep.run_once(clock.now)
    assert (await tasks.get(running.id)).status == TaskStatus.PROCESSING
    assert await coord.worker_queues.active(WORKER) != []
    assert await queued_ids(coord) == [] and sweep.recovered == 0
    [record] = await store.workers.list_worker_records()
    assert record.state == "alive"


async def test_a_worker_the_registry_forgot_keeps_its_tasks_while_its_record_is_fresh(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, coord: Coordination, clock: Clock
) -> None:
    """Redis lost its data: no registry entry at all, but the store heard from the worker."""
    [t] = await tasks.running()
    clock.now += TTL - 1
    await beat(store, coord, clock, registry=False)
    clock.now += TTL - 1
    await sweep.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PROCESSING


async def lapsed(store: SqlStore, clock: Clock) -> None:
    await store.workers.record_workers([INFO], "alive", clock.now - TTL - 1)


async def stopped(store: SqlStore, clock: Clock) -> None:
    """A clean exit: what it left PROCESSING needs no TTL wait."""
    await store.workers.record_workers([INFO], "alive", clock.now)
    await store.workers.mark_worker(WORKER, "stopped", clock.now)


async def never_recorded(store: SqlStore, clock: Clock) -> None:
    return None


@pytest.mark.parametrize("record", [lapsed, stopped, never_recorded])
async def test_the_store_alone_declares_a_worker_dead_when_the_registry_lost_it(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, clock: Clock,
    record: Callable[[SqlStore, Clock], Awaitable[None]],
) -> None:
    """No registry entry to reap (Redis lost it), and the store's record says the worker is
    gone: its attempts are rerun."""
    [t] = await tasks.running()
    await record(store, clock)
    await sweep.run_once(clock.now)
    assert (await tasks.get(t.id)).status == TaskStatus.PENDING
    assert sweep.recovered == 1


async def test_a_stale_epoch_steps_the_scheduler_down_and_reaps_nothing(
    sweep: Recoverer, tasks: Tasks, store: SqlStore, coord: Coordination, leader: Elector,
    make_elector: MakeElector, clock: Clock,
) -> None:
    """The lease vanished from the backend (a failover) and another scheduler took it, while
    this one still trusts its own: the reap script refuses the old epoch."""
    await beat(store, coord, clock)
    _waiting, running = await holding(tasks, store, coord, clock)
    assert leader.current is not None
    await coord.lease.release(leader.current)
    await make_elector("successor").run_once(clock.now)
    clock.now += TTL + 1
    await sweep.run_once(clock.now)

    assert leader.epoch is None and leader.current is None
    assert await coord.registry.expired_workers(clock.now) == [WORKER]  # left to the successor
    assert await queued_ids(coord) == []
    assert (await tasks.get(running.id)).status == TaskStatus.PROCESSING
    [record] = await store.workers.list_worker_records()
    assert record.state == "alive"


async def test_a_scheduler_without_the_lease_does_nothing(
    store: SqlStore, coord: Coordination, outcomes: Outcomes, standby: Elector, tasks: Tasks,
    clock: Clock,
) -> None:
    await beat(store, coord, clock)
    [t] = await tasks.running()
    clock.now += TTL + 1
    await recoverer(store, coord, outcomes, standby).run_once(clock.now)
    assert await coord.registry.expired_workers(clock.now) == [WORKER]
    assert (await tasks.get(t.id)).status == TaskStatus.PROCESSING
