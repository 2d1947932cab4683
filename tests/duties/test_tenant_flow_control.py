"""Flow control per (tenant, type) at dispatch: tenant A's concurrency limit or rate limit for
a type caps only A's tasks of it, counted against A's own in-flight tasks; tenant B's tasks of
the same type go out beside them, on the fake clock and the in-process queues."""

from __future__ import annotations

from collections import Counter

from conveyor.balancing import LeastTask
from conveyor.catalog import Catalog
from conveyor.coordination.protocol import Coordination
from conveyor.models import Priority, QueueItem, TaskConfig, WorkerInfo
from conveyor.scheduler.dispatcher import Dispatcher, flow_bucket
from conveyor.scheduler.elector import Elector
from conveyor.store.sql import SqlStore

from .conftest import JOB, WORKER, Clock


async def passes(coord: Coordination, leader: Elector, catalog: Catalog) -> Dispatcher:
    await coord.registry.heartbeat(WorkerInfo(WORKER, "h", 1, 20, types=(JOB,)), 600)
    return Dispatcher(coord, leader, LeastTask(), catalog, batch_size=20, scan_interval=1.0,
                      look_past=100)


async def enqueue(coord: Coordination, tenant: str, n: int, start: int = 0) -> None:
    await coord.queues.enqueue([QueueItem(f"{tenant}{i}", JOB, Priority.NORMAL, tenant)
                                for i in range(start, start + n)])


async def sent(coord: Coordination) -> Counter[str]:
    return Counter(i.tenant for i in await coord.worker_queues.fetch(WORKER, 100, 0.0))


async def test_a_tenants_concurrency_limit_does_not_cap_another_tenant(
    store: SqlStore, coord: Coordination, catalog: Catalog, leader: Elector, clock: Clock,
) -> None:
    await store.configs.put_config(TaskConfig(JOB, tenant="a", concurrency_limit=2))
    await enqueue(coord, "a", 5)
    await enqueue(coord, "b", 3)
    dispatcher = await passes(coord, leader, catalog)

    await dispatcher.run_once(clock.now)
    assert await sent(coord) == Counter({"a": 2, "b": 3})

    await enqueue(coord, "b", 3, start=3)  # a's two still run: a gets none, b all
    await dispatcher.run_once(clock.now)
    assert await sent(coord) == Counter({"b": 3})
    assert await coord.queues.inflight() == {("a", JOB): 2, ("b", JOB): 6}


async def test_each_tenant_has_its_own_rate_bucket(
    store: SqlStore, coord: Coordination, catalog: Catalog, leader: Elector, clock: Clock,
) -> None:
    for tenant in ("a", "b"):
        await store.configs.put_config(TaskConfig(JOB, tenant=tenant, rate_limit=2.0))
    await enqueue(coord, "a", 5)
    await enqueue(coord, "b", 5)
    await enqueue(coord, "default", 5)  # no config of its own: not limited
    dispatcher = await passes(coord, leader, catalog)

    await dispatcher.run_once(clock.now)

    assert await sent(coord) == Counter({"a": 2, "b": 2, "default": 5})
    clock.now += 1.0  # a second refills each bucket by its own rate
    await dispatcher.run_once(clock.now)
    assert await sent(coord) == Counter({"a": 2, "b": 2})


def test_rate_buckets_keep_the_default_tenants_name_and_never_collide() -> None:
    assert flow_bucket(("default", "mail")) == "mail"  # as before tenants
    assert flow_bucket(("acme", "mail")) == "mail@acme"
    assert flow_bucket(("acme", "mail")) != flow_bucket(("mail", "acme"))
