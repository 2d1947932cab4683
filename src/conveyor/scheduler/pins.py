"""Pin sweeper: PENDING broadcast copies whose worker is gone are CANCELLED (docs/design.md
§10), saying so, and taken off the queues.

A copy is pinned to the worker it was made for, so the dispatcher gives it to no other; if that
worker leaves before running it (or dies while running it, and the recoverer makes it PENDING
again), nothing else ever would. Every ``scheduler.timeout_check_interval`` the leader compares
the workers that PENDING copies are pinned to with the live workers, and cancels the copies of
the absent ones, a page per transaction (``store/pins.py``), at most ``pages_per_pass`` pages a
pass; a pass at that cap goes on a second later.
"""

from __future__ import annotations

import logging

from conveyor.coordination.protocol import Coordination
from conveyor.placement import place, queue_item
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.paging import PAGES_PER_PASS, CatchingUp
from conveyor.store.protocol import Pins

log = logging.getLogger(__name__)


class PinSweeper(CatchingUp):
    name = "pin-sweeper"

    def __init__(
        self, pins: Pins, coordination: Coordination, elector: Elector, *, interval: float,
        batch: int = 500, pages_per_pass: int = PAGES_PER_PASS,
    ) -> None:
        super().__init__(interval)
        self._pins, self._coord, self._elector = pins, coordination, elector
        self._batch, self._pages_per_pass = batch, pages_per_pass
        self.cancelled = 0

    async def run_once(self, now: float) -> None:
        self.behind = False
        if self._elector.epoch is None:
            return
        live = {w.worker_id for w in await self._coord.registry.live_workers()}
        gone = sorted(await self._pins.pinned_workers() - live)
        if not gone:
            return
        for _ in range(self._pages_per_pass):
            epoch = self._elector.epoch
            if epoch is None:
                return
            settled = await self._pins.cancel_pinned(gone, now, self._batch, epoch)
            await self._coord.queues.remove([queue_item(t) for t in settled.cancelled])
            await place(self._coord.queues, settled.released, now)
            self.cancelled += len(settled.cancelled)
            if settled.cancelled:
                log.info("pin sweep: %d cancelled (their worker is gone: %s)",
                         len(settled.cancelled), ", ".join(gone))
            if len(settled.cancelled) < self._batch:
                return
        self.behind = True
