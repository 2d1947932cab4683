"""Timeout sweeper: PROCESSING tasks past their deadline become TIMEOUT (then maybe retried).

The worker enforces timeouts itself; this catches the attempts it could not report (a worker
that hangs, is paused, or lost its database connection). A late answer from such an attempt is
refused by the store because the attempt no longer matches.
"""

from __future__ import annotations

from conveyor.catalog import Catalog
from conveyor.config import TaskDefaults
from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.outcomes import expire
from conveyor.scheduler.elector import Elector
from conveyor.store.protocol import Sweeps, TaskMoves


class TimeoutSweeper(Duty):
    name = "timeout-sweeper"

    def __init__(
        self, sweeps: Sweeps, moves: TaskMoves, coordination: Coordination, catalog: Catalog,
        defaults: TaskDefaults, elector: Elector, *, interval: float, grace: float,
        batch: int,
    ) -> None:
        super().__init__(interval)
        self._sweeps, self._moves = sweeps, moves
        self._coord, self._catalog = coordination, catalog
        self._defaults, self._elector = defaults, elector
        self._grace, self._batch = grace, batch

    async def run_once(self, now: float) -> None:
        epoch = self._elector.epoch
        if epoch is None:
            return
        overdue = await self._sweeps.overdue(now, self._grace, self._batch)
        await expire(
            self._moves, self._coord, self._catalog, self._defaults, overdue, now,
            error="deadline passed without an answer from the worker", lost_to_crash=False,
            epoch=epoch,
        )
