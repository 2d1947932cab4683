"""``PagedSweep``: the shape of a leader sweep that pages through rows by id.

A pass sweeps at most ``pages_per_pass`` pages of ``batch`` rows left alone for ``min_age``,
and the next pass goes on where it stopped (``_cursor``), a second later instead of a whole
interval, so no pass grows with the backlog and a backlog still drains quickly. The orphan
sweep and the release sweep share it.
"""

from __future__ import annotations

from conveyor.duty import Duty, sleep_unless
from conveyor.scheduler.elector import Elector

#: Pages one pass sweeps at most (10,000 rows at the default page of 500): the pass's cost
#: stays bounded whatever the backlog; a longer sweep goes on a second later where it stopped.
PAGES_PER_PASS = 20


class CatchingUp(Duty):
    """A duty whose pass stops at a cap: it sets ``behind`` when rows were left, and the next
    pass then comes a second later instead of a whole interval (retention, the wait sweep)."""

    behind = False

    async def wait_for_next_pass(self) -> None:
        if self.behind:
            await sleep_unless(self._stopping, min(self.interval, 1.0))
        else:
            await super().wait_for_next_pass()


class PagedSweep(Duty):
    def __init__(
        self, elector: Elector, *, interval: float, min_age: float, batch: int,
        pages_per_pass: int,
    ) -> None:
        super().__init__(interval)
        self._elector = elector
        self._min_age, self._batch, self._pages_per_pass = min_age, batch, pages_per_pass
        self._cursor: str | None = None  # where a sweep part-way through its rows stopped

    async def wait_for_next_pass(self) -> None:
        if self._cursor is None:
            await super().wait_for_next_pass()
        else:
            await sleep_unless(self._stopping, min(self.interval, 1.0))
