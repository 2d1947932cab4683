"""Promoter: delayed ids (retries waiting out a backoff, ``run_at`` tasks) move to their
priority queue once due, in as many batches as it takes, and not a moment before."""

from __future__ import annotations

from conveyor.coordination.protocol import Coordination
from conveyor.models import Priority, QueueItem
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.promoter import Promoter

from .conftest import JOB, Clock, delayed_count, queued_ids


def item(name: str, priority: Priority = Priority.NORMAL) -> QueueItem:
    return QueueItem(name, JOB, priority)


async def test_due_ids_move_and_future_ones_wait(
    coord: Coordination, leader: Elector, clock: Clock
) -> None:
    now = clock.now
    await coord.queues.schedule([
        (item("past"), now - 5), (item("now", Priority.HIGH), now), (item("later"), now + 5),
    ])
    promoter = Promoter(coord.queues, leader, interval=0.2, batch=10)
    await promoter.run_once(now)
    assert await queued_ids(coord) == ["now", "past"] and await delayed_count(coord) == 1
    await promoter.run_once(now + 5)
    assert await queued_ids(coord) == ["now", "past", "later"]
    assert await delayed_count(coord) == 0


async def test_one_pass_promotes_every_due_id_batch_after_batch(
    coord: Coordination, leader: Elector, clock: Clock
) -> None:
    await coord.queues.schedule([(item(f"t{i}"), clock.now - i) for i in range(7)])
    await coord.queues.schedule([(item("later"), clock.now + 1)])
    await Promoter(coord.queues, leader, interval=0.2, batch=2).run_once(clock.now)
    assert len(await queued_ids(coord)) == 7 and await delayed_count(coord) == 1


async def test_a_scheduler_without_the_lease_does_nothing(
    coord: Coordination, standby: Elector, clock: Clock
) -> None:
    await coord.queues.schedule([(item("past"), clock.now - 5)])
    await Promoter(coord.queues, standby, interval=0.2, batch=10).run_once(clock.now)
    assert await queued_ids(coord) == [] and await delayed_count(coord) == 1
