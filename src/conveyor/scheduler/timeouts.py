"""Timeout sweeper: PROCESSING tasks past their deadline become TIMEOUT (then maybe retried).

The worker enforces timeouts itself; this catches the attempts it could not report (a worker
that hangs, is paused, or lost its database connection). A late answer from such an attempt is
refused by the store because the attempt no longer matches.
"""

from __future__ import annotations

from conveyor.duty import Duty
from conveyor.outcomes import Outcomes
from conveyor.scheduler.elector import Elector
from conveyor.store.protocol import Sweeps


class TimeoutSweeper(Duty):
    name = "timeout-sweeper"

    def __init__(
        self, sweeps: Sweeps, outcomes: Outcomes, elector: Elector, *, interval: float,
        grace: float, batch: int,
    ) -> None:
        super().__init__(interval)
        self._sweeps, self._outcomes, self._elector = sweeps, outcomes, elector
        self._grace, self._batch = grace, batch

    async def run_once(self, now: float) -> None:
        epoch = self._elector.epoch
        if epoch is None:
            return
        overdue = await self._sweeps.overdue(now, self._grace, self._batch)
        await self._outcomes.expire(
            overdue, now, error="deadline passed without an answer from the worker",
            lost_to_crash=False, epoch=epoch,
        )
