"""Each orphan-sweep pass does bounded work whatever the backlog, and the sweep goes on where
the last pass stopped (issue 10, finding 11), on both coordination backends."""

from __future__ import annotations

import time

from conveyor.bootstrap import Components
from conveyor.placement import queue_item
from conveyor.scheduler.orphans import OrphanSweeper
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
