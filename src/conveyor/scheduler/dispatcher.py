"""Dispatcher: move queued ids to workers, higher priority first, with a load balancer.

One pass peeks up to ``batch_size`` ids (never more than the fleet's free slots), chooses a
worker for each, and moves them all with one epoch-checked script call. It sleeps until new
work or freed capacity wakes it, and loops at once while a pass keeps filling its batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace

from conveyor.balancing import Balancer
from conveyor.coordination.protocol import Coordination, QueueItem, StaleEpoch, WorkerInfo
from conveyor.models import Priority
from conveyor.runtime import Duty
from conveyor.scheduler.elector import Elector

log = logging.getLogger(__name__)

STRICT_ORDER = (Priority.HIGH, Priority.NORMAL, Priority.LOW)


class Dispatcher(Duty):
    name = "dispatcher"

    def __init__(
        self,
        coordination: Coordination,
        elector: Elector,
        balancer: Balancer,
        *,
        batch_size: int,
        scan_interval: float,
        weights: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__(scan_interval)
        self._coord = coordination
        self._elector = elector
        self._balancer = balancer
        self._batch = batch_size
        self._weights = weights  # (low, normal, high) for the weighted mode; None = strict
        self._again = False
        self.dispatched = 0

    async def pause(self) -> None:
        if self._again:
            self._again = False
            return
        await self._coord.queues.wait_for_work(self.interval)

    async def run_once(self, now: float) -> None:
        epoch = self._elector.epoch
        if epoch is None:
            return
        workers = [w for w in await self._coord.registry.live_workers() if w.free > 0]
        if not workers:
            return
        paused = await self._coord.queues.paused()
        budget = min(self._batch, sum(w.free for w in workers))
        items = await self._take(budget, paused)
        moves = plan(items, workers, self._balancer, paused)
        if not moves:
            return
        try:
            moved = await self._coord.queues.assign(epoch, moves)
        except StaleEpoch:
            self._elector.demote()
            return
        self.dispatched += moved
        self._again = len(items) >= budget

    async def _take(self, budget: int, paused: set[str]) -> list[QueueItem]:
        order = [p for p in STRICT_ORDER if p.label not in paused]
        taken: list[QueueItem] = []
        if self._weights is not None:
            total = sum(self._weights[p] for p in order) or 1
            for p in order:
                share = math.ceil(budget * self._weights[p] / total)
                taken += await self._coord.queues.peek(p, share)
        for p in order:
            if len(taken) >= budget:
                break
            seen = {i for i in taken if i.priority == p}
            more = await self._coord.queues.peek(p, budget - len(taken) + len(seen))
            taken += [i for i in more if i not in seen]
        return taken[:budget]


def plan(
    items: Sequence[QueueItem],
    workers: Sequence[WorkerInfo],
    balancer: Balancer,
    paused: set[str],
) -> list[tuple[QueueItem, str]]:
    """Choose a worker for each item; pure, so the balancing rules are testable alone."""
    load = {w.worker_id: w for w in workers}
    moves: list[tuple[QueueItem, str]] = []
    for item in items:
        if item.task_type in paused:
            continue
        fits = [w for w in load.values() if w.free > 0 and w.supports(item.task_type)]
        if not fits:
            continue
        chosen = balancer.choose(item, fits)
        load[chosen.worker_id] = replace(chosen, load=chosen.load + 1)
        moves.append((item, chosen.worker_id))
    return moves
