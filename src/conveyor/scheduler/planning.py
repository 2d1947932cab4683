"""A dispatch pass's plan: which workers take work, and which worker each queued id goes to.

Pure, so the balancing rules are testable alone. The plan runs once per id a pass moves, so it
keeps its per-id cost low: which workers can run an id is worked out once per (type, pin) in
a pass, the load a pass adds is counted apart and a worker's ``WorkerInfo`` rebuilt with it
only when a balancer is asked to choose, and an id that only one worker can take is not put to
the balancer at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from conveyor.balancing import Balancer
from conveyor.models import QueueItem, WorkerInfo

Flow = tuple[str, str]  # (tenant, task type): what a concurrency cap or a rate bucket bounds


def flow(item: QueueItem) -> Flow:
    return item.tenant, item.task_type


def wants_work(worker: WorkerInfo) -> bool:
    """Whether a pass should place work on this worker: once half its prefetch buffer is
    spent (a running slot idle counts, as the buffer is then empty). Topping up a busy worker
    as each slot frees would cost a whole pass for an id or two; its queue still holds the
    other half meanwhile, so it never waits for work."""
    return worker.free > 0 and 2 * worker.free >= worker.prefetch


class _Fleet:
    """The workers of one plan, with the load the plan has added to each so far."""

    def __init__(self, workers: Sequence[WorkerInfo]) -> None:
        self._base = {w.worker_id: w for w in workers}
        self._added: Counter[str] = Counter()
        self._current: dict[str, WorkerInfo] = {}  # rebuilt with the added load, when asked
        self._routes: dict[tuple[str, str], list[str]] = {}

    def fits(self, item: QueueItem) -> list[str]:
        """The workers with a free slot that run the item's type, and only its own worker
        for an item pinned to one (a broadcast copy)."""
        route = item.task_type, item.worker
        able = self._routes.get(route)
        if able is None:
            able = self._routes[route] = [
                w.worker_id for w in self._base.values()
                if w.supports(item.task_type) and item.worker in ("", w.worker_id)
            ]
        # ``free`` is clamped at 0 (and 0 while draining), so this is > 0 exactly when the
        # worker with the added load would still have a free slot.
        return [w for w in able if self._base[w].free - self._added[w] > 0]

    def info(self, worker_id: str) -> WorkerInfo:
        """The worker as a balancer must see it: ``load`` counting this plan's moves."""
        base, added = self._base[worker_id], self._added[worker_id]
        current = self._current.get(worker_id, base)
        if current.load != base.load + added:
            current = self._current[worker_id] = replace(base, load=base.load + added)
        return current

    def take(self, worker_id: str) -> None:
        self._added[worker_id] += 1


def plan(
    items: Sequence[QueueItem],
    workers: Sequence[WorkerInfo],
    balancer: Balancer,
    paused: set[str],
    caps: Mapping[Flow, int] | None = None,
    budget: int | None = None,
) -> list[tuple[QueueItem, str]]:
    """Choose a worker for each item.

    ``caps`` bounds how many items of a (tenant, type) may be placed (fleet-wide concurrency
    limits, rate tokens); ``budget`` how many in all. An item pinned to a worker (a broadcast
    copy) goes to that worker only. Items that cannot be placed are skipped, never waited on, so
    those behind them still are.
    """
    fleet = _Fleet(workers)
    left = dict(caps or {})
    moves: list[tuple[QueueItem, str]] = []
    for item in items:
        if budget is not None and len(moves) >= budget:
            break
        key = flow(item)
        if item.task_type in paused or left.get(key, 1) <= 0:
            continue
        fits = fleet.fits(item)
        if not fits:
            continue
        chosen = fits[0] if len(fits) == 1 else balancer.choose(
            item, [fleet.info(w) for w in fits]
        ).worker_id
        fleet.take(chosen)
        moves.append((item, chosen))
        if key in left:
            left[key] -= 1
    return moves
