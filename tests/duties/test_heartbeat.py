"""Heartbeat: keep this worker in the live registry (what the dispatcher places work on) and
its durable record current (what the recoverer checks before reclaiming its tasks)."""

from __future__ import annotations

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskConfig
from conveyor.store.sql import SqlStore
from conveyor.worker.capabilities import Capabilities
from conveyor.worker.heartbeat import Heartbeat

from .conftest import JOB, REGISTRATIONS, WORKER, Clock, Tasks, offline

TTL = 30.0


@pytest.fixture
def heartbeat(coord: Coordination, store: SqlStore) -> Heartbeat:
    return Heartbeat(
        WORKER, coord.registry, store.workers, capacity=4, prefetch=2, types=(JOB, "other"),
        weight=2.0, interval=10.0, ttl=TTL, load=lambda: 0,
    )


async def test_a_beat_registers_what_the_dispatcher_places_work_by(
    heartbeat: Heartbeat, coord: Coordination, clock: Clock
) -> None:
    await heartbeat.run_once(clock.now)
    [info] = await coord.registry.live_workers()
    assert (info.worker_id, info.capacity, info.prefetch, info.types, info.weight) == (
        WORKER, 4, 2, (JOB, "other"), 2.0
    )
    assert (info.last_heartbeat, info.draining, info.free) == (clock.now, False, 6)


async def test_the_registry_counts_the_load_from_what_the_worker_holds(
    heartbeat: Heartbeat, coord: Coordination, tasks: Tasks, clock: Clock
) -> None:
    """Two queued for it, one of them fetched: both take a slot of capacity plus prefetch."""
    await heartbeat.run_once(clock.now)
    await tasks.deliver(await tasks.pending(2))
    await coord.worker_queues.fetch(WORKER, 1, 0.0)
    [info] = await coord.registry.live_workers()
    assert (info.load, info.free) == (2, 4)


async def test_a_draining_worker_is_offered_nothing(
    heartbeat: Heartbeat, coord: Coordination, clock: Clock
) -> None:
    heartbeat.draining = True
    await heartbeat.run_once(clock.now)
    [info] = await coord.registry.live_workers()
    assert info.draining and info.free == 0


async def test_the_entry_lapses_a_ttl_after_the_last_beat(
    heartbeat: Heartbeat, coord: Coordination, clock: Clock
) -> None:
    await heartbeat.run_once(clock.now)
    clock.now += TTL - 1
    await heartbeat.run_once(clock.now)
    clock.now += TTL - 1
    assert len(await coord.registry.live_workers()) == 1
    clock.now += 1
    assert await coord.registry.live_workers() == []
    assert await coord.registry.expired_workers(clock.now) == [WORKER]


async def test_each_beat_moves_the_durable_record_and_keeps_first_seen(
    heartbeat: Heartbeat, store: SqlStore, clock: Clock
) -> None:
    first = clock.now
    await heartbeat.run_once(clock.now)
    clock.now += 10.0
    await heartbeat.run_once(clock.now)
    [record] = await store.workers.list_worker_records()
    assert (record.worker_id, record.capacity, record.types, record.state) == (
        WORKER, 4, (JOB, "other"), "alive"
    )
    assert (record.first_seen, record.last_heartbeat, record.state_changed_at) == (
        first, clock.now, first
    )


async def test_a_worker_marked_dead_that_beats_again_is_alive_again(
    heartbeat: Heartbeat, store: SqlStore, clock: Clock
) -> None:
    """It was paused past its TTL and reaped; its next beat says it is back."""
    await heartbeat.run_once(clock.now)
    await store.workers.mark_worker(WORKER, "dead", clock.now)
    clock.now += 5.0
    await heartbeat.run_once(clock.now)
    [record] = await store.workers.list_worker_records()
    assert (record.state, record.state_changed_at) == ("alive", clock.now)


async def test_each_beat_advertises_the_task_configs_types_and_keeps_them_when_unreadable(
    coord: Coordination, store: SqlStore, clock: Clock
) -> None:
    """A PUT of an http type reaches the worker with its next beat; a store that cannot be
    read for a beat must not stop the live entry (the registry keeps the last types)."""
    capabilities = Capabilities(REGISTRATIONS, store.configs, {"python", "http"}, (), ())
    heartbeat = Heartbeat(
        WORKER, coord.registry, store.workers, capacity=4, prefetch=0, types=(), weight=1.0,
        interval=10.0, ttl=TTL, load=lambda: 0, advertise=capabilities.types,
    )
    await heartbeat.run_once(clock.now)
    await store.configs.put_config(
        TaskConfig("hook", executor="http", executor_config={"url": "http://x"})
    )
    await heartbeat.run_once(clock.now + 1)
    assert [w.types for w in await coord.registry.live_workers()] == [("hook", JOB)]

    async with offline(store, "task_config"):
        clock.now += TTL - 1
        await heartbeat.run_once(clock.now)
    [info] = await coord.registry.live_workers()
    assert (info.types, info.last_heartbeat) == (("hook", JOB), clock.now)
