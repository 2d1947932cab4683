"""Orphan sweeper: re-enqueue PENDING rows that no queue holds.

Such rows come from a crash between the SQL insert and the queue push, from a Redis that lost
its data, or from a standalone restart (the in-process queues start empty). Only rows left
untouched for ``min_age`` are considered, so a create in flight is never pushed twice; a
duplicate push would be harmless anyway (the worker's start is a compare-and-set). A pass
sweeps at most ``pages_per_pass`` pages and the next one goes on from there, so no pass grows
with the backlog.
"""

from __future__ import annotations

import logging

from conveyor.coordination.protocol import Coordination
from conveyor.placement import place, queue_item
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.paging import PAGES_PER_PASS, PagedSweep
from conveyor.store.protocol import Sweeps

log = logging.getLogger(__name__)


class OrphanSweeper(PagedSweep):
    name = "orphan-sweeper"

    def __init__(
        self, sweeps: Sweeps, coordination: Coordination, elector: Elector, *,
        interval: float, min_age: float, batch: int = 500, pages_per_pass: int = PAGES_PER_PASS,
    ) -> None:
        super().__init__(elector, interval=interval, min_age=min_age, batch=batch,
                         pages_per_pass=pages_per_pass)
        self._sweeps, self._coord = sweeps, coordination
        self.requeued = 0

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is not None:
            self._cursor, _ = await self._sweep_from(self._cursor, now, self._min_age,
                                                     self._pages_per_pass)

    async def sweep(self, now: float, min_age: float) -> int:
        """One full pass over the PENDING rows at once (a standalone start-up, whose in-process
        queues start empty); returns how many were re-queued."""
        _, found = await self._sweep_from(None, now, min_age, None)
        return found

    async def _sweep_from(
        self, after: str | None, now: float, min_age: float, pages: int | None
    ) -> tuple[str | None, int]:
        """Sweep up to ``pages`` pages of rows after ``after``; returns where to go on (None
        once every row was seen) and how many were re-queued."""
        found = 0
        swept = 0
        while pages is None or swept < pages:
            page = await self._sweeps.pending_page(after, now - min_age, self._batch)
            if not page:
                after = None
                break
            tracked = await self._coord.queues.tracked([queue_item(t) for t in page])
            lost = [t for t in page if t.id not in tracked]
            await place(self._coord.queues, lost, now)
            found += len(lost)
            after = page[-1].id
            swept += 1
        if found:
            log.warning("re-queued %d pending tasks that no queue held", found)
        self.requeued += found
        return after, found
