"""A dispatch pass's plan: which workers take work, and which worker each queued id goes to.

Pure, so the balancing rules are testable alone. The plan runs once per id a pass moves, over
a fleet that may hold a hundred workers, so its cost per id must not grow with the fleet
beyond the balancer's own look at the candidates: the workers that can run an id are listed
once per (type, pin) in a pass, as the balancer sees them (``load`` counting this plan's
moves), and only the chosen worker's entries are brought up to date after each move (a worker
that fills up leaves the lists); an id that only one worker can take is not put to the
balancer at all.
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
    """The workers of one plan, as a balancer must see them: ``load`` counts the plan's moves.

    Each route (type, pin) keeps the list of its candidates with a free slot, in fleet order,
    and where each sits in it. A move only marks the chosen worker's entries stale; a route's
    stale entries are rebuilt with the added load when it is next asked for candidates to
    balance (a route of one candidate needs none), and a worker that fills up leaves them.
    """

    def __init__(self, workers: Sequence[WorkerInfo]) -> None:
        # By id, in fleet order, while it has a free slot (``free`` is 0 while draining).
        self._base = {w.worker_id: w for w in workers if w.free > 0}
        self._added: Counter[str] = Counter()
        self._routes: dict[tuple[str, str], list[WorkerInfo]] = {}
        self._where: dict[tuple[str, str], dict[str, int]] = {}
        self._stale: dict[tuple[str, str], set[str]] = {}

    def fits(self, item: QueueItem) -> list[WorkerInfo]:
        """The workers with a free slot that run the item's type, and only its own worker
        for an item pinned to one (a broadcast copy)."""
        route = item.task_type, item.worker
        able = self._routes.get(route)
        if able is None:
            able = self._routes[route] = [
                self._current(w) for w in self._base.values()
                if w.supports(item.task_type) and item.worker in ("", w.worker_id)
            ]
            self._where[route] = {w.worker_id: i for i, w in enumerate(able)}
            self._stale[route] = set()
        stale = self._stale[route]
        if stale and len(able) > 1:
            where = self._where[route]
            for worker_id in stale:
                able[where[worker_id]] = self._current(self._base[worker_id])
            stale.clear()
        return able

    def take(self, worker_id: str) -> None:
        """One more id on the worker; once it has no free slot it leaves every route."""
        self._added[worker_id] += 1
        full = self._base[worker_id].free <= self._added[worker_id]
        for route, where in self._where.items():
            if worker_id not in where:
                continue
            if not full:
                self._stale[route].add(worker_id)
                continue
            able = [w for w in self._routes[route] if w.worker_id != worker_id]
            self._routes[route] = able
            self._where[route] = {w.worker_id: i for i, w in enumerate(able)}
            self._stale[route].discard(worker_id)
        if full:
            del self._base[worker_id]

    def _current(self, base: WorkerInfo) -> WorkerInfo:
        added = self._added[base.worker_id]
        return replace(base, load=base.load + added) if added else base


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
        chosen = fits[0] if len(fits) == 1 else balancer.choose(item, fits)
        fleet.take(chosen.worker_id)
        moves.append((item, chosen.worker_id))
        if key in left:
            left[key] -= 1
    return moves
