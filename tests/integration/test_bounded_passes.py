"""Each pass of the orphan sweep and of the promoter does bounded work whatever the backlog,
and the next pass goes on where it stopped (issue 10, finding 11), on both coordination
backends."""

from __future__ import annotations

import time

from conveyor.bootstrap import Components
from conveyor.placement import queue_item
from conveyor.scheduler.orphans import OrphanSweeper
from conveyor.scheduler.promoter import Promoter
from conveyor.service import TaskRequest


async def test_each_pass_sweeps_at_most_its_pages(both: Components) -> None:
    created = await both.service.submit([TaskRequest("echo") for _ in range(50)])
    # Lose every queue entry, as a Redis that lost its data would.
    await both.coordination.queues.remove([queue_item(c.task) for c in created])
    scheduler = both.scheduler()
    now = time.time() + 1
    await scheduler.elector.run_once(now)
    sweeper = OrphanSweeper(both.store.sweeps, both.coordination, scheduler.elector,
                            interval=30, min_age=0, batch=5, pages_per_pass=2)
    for done in range(10, 60, 10):
        await sweeper.run_once(now)
        assert sweeper.requeued == done  # two pages of five rows, no more
    await sweeper.run_once(now)  # the end of the rows: the next pass starts over
    await sweeper.run_once(now)
    assert sweeper.requeued == 50
    assert (await both.coordination.queues.lengths())["normal"] == 50


async def test_each_promoter_pass_moves_at_most_its_batches(both: Components) -> None:
    now = time.time()
    await both.service.submit([TaskRequest("echo", run_at=now + 60) for _ in range(25)])
    scheduler = both.scheduler()
    await scheduler.elector.run_once(now)
    promoter = Promoter(both.coordination.queues, scheduler.elector, 0.2, 5, batches_per_pass=2)
    for queued in (10, 20, 25, 25):
        await promoter.run_once(now + 61)
        lengths = await both.coordination.queues.lengths()
        assert (lengths["normal"], lengths["delayed"]) == (queued, 25 - queued)
