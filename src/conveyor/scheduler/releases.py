"""Release sweeper: settle WAITING tasks whose parents have ended (docs/design.md §10).

A parent's final move settles its children in the same transaction, so this sweep only
repairs what that could not: a child created while its last parent was finishing (neither
transaction saw the other's rows), a MariaDB transaction whose snapshot predates a sibling
parent's commit, a cascade deeper than ``store.deps.MAX_ROUNDS``, and children released by a
cancel's policy ``run``. Released tasks are placed on their queues after the commit; a crash
(kill -9) between the commit and the push leaves PENDING rows, which the orphan sweep queues.
So nothing waits for ever, and nothing is released twice (every move is conditional on
WAITING). Like the orphan sweep it looks only at rows untouched for ``min_age`` and goes on
from where a long pass stopped.
"""

from __future__ import annotations

import logging

from conveyor.coordination.protocol import TaskQueues
from conveyor.placement import place
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.paging import PAGES_PER_PASS, PagedSweep
from conveyor.store.protocol import Dependencies

log = logging.getLogger(__name__)


class ReleaseSweeper(PagedSweep):
    name = "release-sweeper"

    def __init__(
        self, deps: Dependencies, queues: TaskQueues, elector: Elector, *,
        interval: float, min_age: float, batch: int = 500, pages_per_pass: int = PAGES_PER_PASS,
    ) -> None:
        super().__init__(elector, interval=interval, min_age=min_age, batch=batch,
                         pages_per_pass=pages_per_pass)
        self._deps, self._queues = deps, queues
        self.released = 0
        self.cancelled = 0

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is None:
            return
        for _ in range(self._pages_per_pass):
            self._cursor, settled = await self._deps.release_waiting(
                self._cursor, now - self._min_age, self._batch, now
            )
            await place(self._queues, settled.released, now)
            self.released += len(settled.released)
            self.cancelled += len(settled.cancelled)
            if settled.released or settled.cancelled:
                log.info("release sweep: %d released, %d cancelled",
                         len(settled.released), len(settled.cancelled))
            if self._cursor is None:
                break
