"""Load balancers: pick a worker for a task among the live ones that can take it. Pure.

The dispatcher passes only candidates that support the task's type and have a free slot, with
``load`` already counting what this dispatch pass assigned, so every strategy sees the same
up-to-date picture and none can overfill a worker.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Callable, Sequence
from typing import Protocol

from conveyor.errors import ConfigError
from conveyor.models import QueueItem, WorkerInfo


class Balancer(Protocol):
    def choose(self, item: QueueItem, candidates: Sequence[WorkerInfo]) -> WorkerInfo:
        """Return one of ``candidates`` (never empty)."""


class LeastTask:
    """The worker with the lowest load relative to its capacity (ties: the most free slots)."""

    def choose(self, item: QueueItem, candidates: Sequence[WorkerInfo]) -> WorkerInfo:
        return min(candidates, key=lambda w: (w.load / w.capacity, -w.free, w.worker_id))


class RoundRobin:
    """Each worker in turn, in worker-id order, skipping the full ones."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, item: QueueItem, candidates: Sequence[WorkerInfo]) -> WorkerInfo:
        ordered = sorted(candidates, key=lambda w: w.worker_id)
        return ordered[next(self._counter) % len(ordered)]


class Random:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, item: QueueItem, candidates: Sequence[WorkerInfo]) -> WorkerInfo:
        return self._rng.choice(list(candidates))


class Weighted:
    """Random, in proportion to each worker's configured weight times its free slots."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, item: QueueItem, candidates: Sequence[WorkerInfo]) -> WorkerInfo:
        weights = [w.weight * w.free for w in candidates]
        return self._rng.choices(list(candidates), weights=weights)[0]


class ConsistentHash:
    """The same task id lands on the same worker while the fleet is stable; when a worker
    leaves, only its share moves. 100 virtual nodes per worker smooth the spread."""

    def __init__(self, replicas: int = 100) -> None:
        self._replicas = replicas
        self._ring_for: tuple[str, ...] = ()
        self._ring: list[tuple[int, str]] = []

    def choose(self, item: QueueItem, candidates: Sequence[WorkerInfo]) -> WorkerInfo:
        self._rebuild(candidates)
        by_id = {w.worker_id: w for w in candidates}
        hashes = [h for h, _ in self._ring]
        start = bisect.bisect(hashes, _hash(item.task_id))
        for offset in range(len(self._ring)):
            worker_id = self._ring[(start + offset) % len(self._ring)][1]
            if worker_id in by_id:
                return by_id[worker_id]
        return candidates[0]  # unreachable: every candidate is on the ring

    def _rebuild(self, candidates: Sequence[WorkerInfo]) -> None:
        ids = tuple(sorted(w.worker_id for w in candidates))
        if ids == self._ring_for:
            return
        self._ring_for = ids
        self._ring = sorted(
            (_hash(f"{wid}#{n}"), wid) for wid in ids for n in range(self._replicas)
        )


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


BUILTIN: dict[str, Callable[[], Balancer]] = {
    "least_task": LeastTask,
    "round_robin": RoundRobin,
    "random": Random,
    "weighted": Weighted,
    "consistent_hash": ConsistentHash,
}


def make_balancer(name: str, plugins: dict[str, Callable[[], Balancer]] | None = None) -> Balancer:
    factories = {**BUILTIN, **(plugins or {})}
    if name not in factories:
        raise ConfigError(
            f"setting 'scheduler.load_balance_strategy': unknown {name!r}; "
            f"choose one of {', '.join(sorted(factories))}"
        )
    return factories[name]()
