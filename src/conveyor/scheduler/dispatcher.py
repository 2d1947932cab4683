"""Dispatcher: move queued ids to workers, higher priority first, with a load balancer.

One pass peeks up to ``batch_size`` ids (never more than the fleet's free slots), chooses a
worker for each, and moves them all with one epoch-checked script call. It sleeps until new
work or freed capacity wakes it, and loops at once while a pass keeps filling its batch.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from conveyor.balancing import Balancer
from conveyor.catalog import Catalog, TypeSpec
from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.errors import StaleEpoch
from conveyor.models import Priority, QueueItem, WorkerInfo
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
        catalog: Catalog,
        *,
        batch_size: int,
        scan_interval: float,
        weights: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__(scan_interval)
        self._coord = coordination
        self._elector = elector
        self._balancer = balancer
        self._catalog = catalog
        self._batch = batch_size
        self._weights = weights  # (low, normal, high) for the weighted mode; None = strict
        self._again = False
        self.dispatched = 0
        self.refused = 0  # passes whose epoch a script refused

    async def wait_for_next_pass(self) -> None:
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
        limits = await self._limits({i.task_type for i in items})
        caps = await self._concurrency_caps(limits)
        moves = await self._rate_limited(
            plan(items, workers, self._balancer, paused, caps), limits, now
        )
        if not moves:
            return
        try:
            moved = await self._coord.queues.assign(epoch, moves)
        except StaleEpoch:
            self.refused += 1
            self._elector.demote()
            return
        self.dispatched += moved
        self._again = len(items) >= budget

    async def _limits(self, types: set[str]) -> dict[str, TypeSpec]:
        """The types in this pass that have a concurrency or rate limit (configs are cached)."""
        limited = {}
        for task_type in types:
            spec = await self._catalog.spec(task_type)
            if spec is not None and (spec.concurrency_limit or spec.rate_limit):
                limited[task_type] = spec
        return limited

    async def _concurrency_caps(self, limits: dict[str, TypeSpec]) -> dict[str, int]:
        capped = {t: s.concurrency_limit for t, s in limits.items() if s.concurrency_limit}
        if not capped:
            return {}
        inflight = await self._coord.queues.inflight()
        return {t: max(0, limit - inflight.get(t, 0)) for t, limit in capped.items()}

    async def _rate_limited(
        self, moves: list[tuple[QueueItem, str]], limits: dict[str, TypeSpec], now: float
    ) -> list[tuple[QueueItem, str]]:
        """Take tokens only for moves that found a worker, so no token is spent in vain."""
        rated = {t: s.rate_limit for t, s in limits.items() if s.rate_limit}
        if not rated:
            return moves
        wanted = Counter(item.task_type for item, _ in moves if item.task_type in rated)
        granted = {
            t: await self._coord.queues.take_tokens(t, rated[t], n, now) for t, n in wanted.items()
        }
        kept = []
        for item, worker_id in moves:
            if item.task_type in granted:
                if granted[item.task_type] <= 0:
                    continue
                granted[item.task_type] -= 1
            kept.append((item, worker_id))
        return kept

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
    caps: Mapping[str, int] | None = None,
) -> list[tuple[QueueItem, str]]:
    """Choose a worker for each item; pure, so the balancing rules are testable alone.

    ``caps`` bounds how many items of a type may be placed (fleet-wide concurrency limits).
    """
    load = {w.worker_id: w for w in workers}
    left = dict(caps or {})
    moves: list[tuple[QueueItem, str]] = []
    for item in items:
        if item.task_type in paused or left.get(item.task_type, 1) <= 0:
            continue
        fits = [w for w in load.values() if w.free > 0 and w.supports(item.task_type)]
        if not fits:
            continue
        chosen = balancer.choose(item, fits)
        load[chosen.worker_id] = replace(chosen, load=chosen.load + 1)
        moves.append((item, chosen.worker_id))
        if item.task_type in left:
            left[item.task_type] -= 1
    return moves
