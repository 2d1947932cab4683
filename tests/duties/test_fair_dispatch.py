"""Fair dispatch (issue 12): behind tenant A's backlog of 100,000 queued tasks, tenant B's single
task goes out in the very first dispatcher pass, on both coordination backends; with weights
each tenant's share of a pass follows its weight. Not timed: ``bench/fairness.py`` measures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping

import pytest

from conveyor.balancing import LeastTask
from conveyor.catalog import Catalog
from conveyor.coordination.local import LocalCoordination
from conveyor.coordination.protocol import Coordination
from conveyor.coordination.redis import connect_redis
from conveyor.models import Priority, QueueItem, WorkerInfo
from conveyor.scheduler.dispatcher import Dispatcher
from conveyor.scheduler.elector import Elector
from tests.contract.conftest import redis_session

from .conftest import JOB, WORKER, Clock

BACKLOG = 100_000


@pytest.fixture(params=["local", "redis"])
async def coord(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Coordination]:
    """This module's coordination on both backends (the other duty tests use the local one)."""
    if request.param == "local":
        local = LocalCoordination(clock=clock).as_coordination()
        yield local
        await local.close()
        return
    async with redis_session() as session:
        backend = await connect_redis(session.url, session.prefix)
        try:
            yield backend
        finally:
            await backend.close()


async def backlog(coord: Coordination, tenant: str, n: int, start: int = 0) -> None:
    for first in range(start, start + n, 10_000):
        await coord.queues.enqueue([
            QueueItem(f"{tenant}{i}", JOB, Priority.NORMAL, tenant)
            for i in range(first, min(start + n, first + 10_000))
        ])


async def dispatcher(
    coord: Coordination, leader: Elector, catalog: Catalog, clock: Clock,
    weights: Mapping[str, int], capacity: int = 10,
) -> Dispatcher:
    await coord.registry.heartbeat(WorkerInfo(WORKER, "h", 1, capacity, types=(JOB,)), 600)

    async def tenant_weights() -> Mapping[str, int]:
        return weights

    return Dispatcher(
        coord, leader, LeastTask(), catalog, batch_size=capacity, scan_interval=1.0,
        look_past=100, tenant_weights=tenant_weights,
    )


async def test_a_single_task_goes_out_in_the_first_pass_behind_a_backlog(
    coord: Coordination, leader: Elector, catalog: Catalog, clock: Clock,
) -> None:
    await backlog(coord, "a", BACKLOG)
    await backlog(coord, "b", 1)
    passes = await dispatcher(coord, leader, catalog, clock, {})

    await passes.run_once(clock.now)

    taken = [i.tenant for i in await coord.worker_queues.fetch(WORKER, 100, 0.05)]
    assert taken.count("b") == 1 and len(taken) == 10
    assert (await coord.queues.lengths())["normal"] == BACKLOG - 9


async def test_each_pass_shares_by_weight_and_resumes_the_ring(
    coord: Coordination, leader: Elector, catalog: Catalog, clock: Clock,
) -> None:
    """Weights 1:3 and passes of 6 slots, which cut turns in the middle: the next pass goes on
    with the turn it cut (a restart at the ring's head would give ``a`` 2 of every 6), so four
    passes share exactly 1:3, though a's backlog was queued first."""
    await backlog(coord, "a", 1_000)
    await backlog(coord, "b", 1_000)
    passes = await dispatcher(coord, leader, catalog, clock, {"b": 3}, capacity=6)
    shares = []
    for _ in range(4):
        await passes.run_once(clock.now)
        items = await coord.worker_queues.fetch(WORKER, 100, 0.05)
        await coord.worker_queues.ack(WORKER, items)
        shares.append(Counter(i.tenant for i in items))
    assert shares[0] == Counter(a=2, b=4)  # a1 b1 b2 b3 a2 b4: b's turn goes on next pass
    assert shares[1] == Counter(a=1, b=5)  # b5 b6 a3 b7 b8 b9
    assert sum(shares, Counter()) == Counter(a=6, b=18)
