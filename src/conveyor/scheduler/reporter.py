"""Reporter: the leader publishes when each of its duties last ran, for operators
(``GET /api/v1/scheduler``, ``conveyor scheduler status``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from conveyor.coordination.protocol import LeaderLease
from conveyor.duty import Duty
from conveyor.scheduler.elector import Elector


class Reporter(Duty):
    name = "reporter"

    def __init__(
        self, lease: LeaderLease, elector: Elector, duties: Callable[[], Sequence[Duty]],
        interval: float,
    ) -> None:
        super().__init__(interval)
        self._lease = lease
        self._elector = elector
        self._duties = duties

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is None:
            return
        status = {d.name: d.last_run for d in self._duties() if d.last_run is not None}
        await self._lease.publish_status(status, self.interval * 3)
