"""Dispatcher: a task goes only to a worker that runs its type; a type no live worker runs
stays PENDING in its queue, without holding up the types behind it, and is reported so."""

from __future__ import annotations

from conveyor.balancing import LeastTask
from conveyor.catalog import Catalog
from conveyor.coordination.protocol import Coordination
from conveyor.models import TaskStatus
from conveyor.operations import Operations
from conveyor.placement import queue_item
from conveyor.scheduler.dispatcher import Dispatcher
from conveyor.scheduler.elector import Elector
from conveyor.store.sql import SqlStore
from conveyor.worker.capabilities import Capabilities
from conveyor.worker.heartbeat import Heartbeat

from .conftest import JOB, REGISTRATIONS, WORKER, Clock, Tasks, queued_ids

APP_TYPE = "resize"  # the user's type: only a worker started with its --app runs it


async def test_an_unplaceable_type_stays_queued_while_the_others_are_placed(
    store: SqlStore, coord: Coordination, catalog: Catalog, leader: Elector, tasks: Tasks,
    clock: Clock,
) -> None:
    """A worker without the app advertises what it can run (its registrations), so the two
    ``resize`` ids at the heads stay queued and the ``job`` ids behind them, past the heads
    the budget reads first, are placed in the same pass."""
    heartbeat = Heartbeat(
        WORKER, coord.registry, store.workers, capacity=2, prefetch=0, types=(), weight=1.0,
        interval=10.0, ttl=30.0, load=lambda: 0,
        advertise=Capabilities(REGISTRATIONS, store.configs, {"python"}, (), ()).types,
    )
    await heartbeat.run_once(clock.now)
    stuck = await tasks.pending(2, task_type=APP_TYPE)
    runnable = await tasks.pending(2)
    await coord.queues.enqueue([queue_item(t) for t in [*stuck, *runnable]])
    dispatcher = Dispatcher(
        coord, leader, LeastTask(), catalog, batch_size=10, scan_interval=1.0, look_past=100,
    )

    await dispatcher.run_once(clock.now)

    assert heartbeat.info.types == (JOB,)
    assert dispatcher.dispatched == 2
    assert await queued_ids(coord) == [t.id for t in stuck]
    assert [i.task_id for i in await coord.worker_queues.fetch(WORKER, 10, 0.0)] == [
        t.id for t in runnable
    ]
    assert {(await tasks.get(t.id)).status for t in stuck} == {TaskStatus.PENDING}
    queues = await Operations(store.workers, store.stats, coord).queues()
    assert queues.no_worker == {APP_TYPE: 2}


async def test_the_heads_read_beside_the_workers_never_cuts_a_pass_short(
    store: SqlStore, coord: Coordination, catalog: Catalog, leader: Elector, tasks: Tasks,
    clock: Clock,
) -> None:
    """A pass reads the heads beside the live workers as deep as the last pass's budget while
    the queues are shallow: a read that came back full but shallower than this pass's budget
    is made again as deep as the budget, so ids queued behind it still go in the same pass;
    one that held the whole queue is used as it is."""
    heartbeat = Heartbeat(
        WORKER, coord.registry, store.workers, capacity=10, prefetch=0, types=(JOB,),
        weight=1.0, interval=10.0, ttl=30.0, load=lambda: 0,
    )
    await heartbeat.run_once(clock.now)
    dispatcher = Dispatcher(
        coord, leader, LeastTask(), catalog, batch_size=100, scan_interval=1.0, look_past=0,
    )
    first = await tasks.pending(3)  # the first pass reads one id beside the workers
    await coord.queues.enqueue([queue_item(t) for t in first])
    await dispatcher.run_once(clock.now)
    assert dispatcher.dispatched == 3

    await heartbeat.run_once(clock.now)  # still 10 free: the worker fetched nothing
    later = await tasks.pending(4)  # fewer than the 10 read beside the workers
    await coord.queues.enqueue([queue_item(t) for t in later])
    await dispatcher.run_once(clock.now)

    assert dispatcher.dispatched == 7
    assert await queued_ids(coord) == []
    fetched = await coord.worker_queues.fetch(WORKER, 10, 0.0)
    assert [i.task_id for i in fetched] == [t.id for t in [*first, *later]]
