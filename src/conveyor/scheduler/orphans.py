"""Orphan sweeper: re-enqueue PENDING rows that no queue holds.

Such rows come from a crash between the SQL insert and the queue push, from a Redis that lost
its data, or from a standalone restart (the in-process queues start empty). Only rows left
untouched for ``min_age`` are considered, so a create in flight is never pushed twice; a
duplicate push would be harmless anyway (the worker's start is a compare-and-set).
"""

from __future__ import annotations

import logging

from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.placement import place, queue_item
from conveyor.scheduler.elector import Elector
from conveyor.store.protocol import Sweeps

log = logging.getLogger(__name__)


class OrphanSweeper(Duty):
    name = "orphan-sweeper"

    def __init__(
        self, sweeps: Sweeps, coordination: Coordination, elector: Elector, *,
        interval: float, min_age: float, batch: int = 500,
    ) -> None:
        super().__init__(interval)
        self._sweeps, self._coord, self._elector = sweeps, coordination, elector
        self._min_age, self._batch = min_age, batch
        self.requeued = 0

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is not None:
            await self.sweep(now, self._min_age)

    async def sweep(self, now: float, min_age: float) -> int:
        """One full pass over the PENDING rows; returns how many were re-queued."""
        after: str | None = None
        found = 0
        while True:
            page = await self._sweeps.pending_page(after, now - min_age, self._batch)
            if not page:
                break
            tracked = await self._coord.queues.tracked([queue_item(t) for t in page])
            lost = [t for t in page if t.id not in tracked]
            await place(self._coord.queues, lost, now)
            found += len(lost)
            after = page[-1].id
        if found:
            log.warning("re-queued %d pending tasks that no queue held", found)
        self.requeued += found
        return found
