"""Wait sweeper: a task still WAITING at its ``wait_deadline`` is CANCELLED (docs/design.md
§10), with a reason saying it waited too long.

Like the timeout sweep it runs every ``scheduler.timeout_check_interval`` on the leader only,
and each page's log rows carry the leader's epoch. A pass cancels at most ``pages_per_pass``
pages of ``batch`` tasks (each page its own transaction, see ``store/waits.py``) and, when it
hit that cap, goes on a second later, so a backlog drains without one long transaction.
Children of a cancelled task are settled in its page's transaction; those released (policy
``run``) are placed on their queues after the commit, and a crash before the push leaves
PENDING rows the orphan sweep queues.
"""

from __future__ import annotations

import logging

from conveyor.coordination.protocol import TaskQueues
from conveyor.placement import place
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.paging import PAGES_PER_PASS, CatchingUp
from conveyor.store.protocol import Waits

log = logging.getLogger(__name__)


class WaitSweeper(CatchingUp):
    name = "wait-sweeper"

    def __init__(
        self, waits: Waits, queues: TaskQueues, elector: Elector, *, interval: float,
        batch: int = 500, pages_per_pass: int = PAGES_PER_PASS,
    ) -> None:
        super().__init__(interval)
        self._waits, self._queues, self._elector = waits, queues, elector
        self._batch, self._pages_per_pass = batch, pages_per_pass
        self.behind = False  # the last pass stopped at its cap with tasks left
        self.cancelled = 0

    async def run_once(self, now: float) -> None:
        self.behind = False
        for _ in range(self._pages_per_pass):
            epoch = self._elector.epoch
            if epoch is None:
                return
            settled = await self._waits.expire_waits(now, self._batch, epoch)
            await place(self._queues, settled.released, now)
            self.cancelled += len(settled.cancelled)
            if settled.cancelled:
                log.info("wait sweep: %d cancelled (waited too long), %d released",
                         len(settled.cancelled), len(settled.released))
            if len(settled.cancelled) < self._batch:  # (a cascade may cost one empty page)
                return
        self.behind = True
