"""Fair queues: weighted round-robin between tenants within one priority (docs/design.md §3).

One priority holds a queue per tenant and a *ring* of the tenants that have work, in turn
order. The ring's head is the tenant whose turn it is and ``used`` counts what it already took
of that turn; a tenant of weight ``w`` takes up to ``w`` items per turn, then the ring moves on.
``peek`` reads the queues in that order without changing anything; ``take`` (the dispatcher's
move) advances the ring as the items leave, so the next pass continues where this one stopped.
A tenant with a backlog of 100,000 therefore delays another tenant's single task by at most one
turn, whatever the backlog.

This module is the in-process backend's implementation and the reference for the Redis scripts
(``lua/fair.lua``), which keep the same ring with the same rules.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Mapping

from conveyor.models import QueueItem


def weight_of(weights: Mapping[str, int] | None, tenant: str) -> int:
    """A tenant's weight; tenants without one (and nonsense below 1) take one item a turn."""
    return max(1, (weights or {}).get(tenant, 1))


class TenantRing:
    """The tenants that have work in one priority, head first, and how much of its turn the
    head has used."""

    def __init__(self) -> None:
        self.order: deque[str] = deque()
        self.used = 0

    def join(self, tenant: str) -> None:
        """A tenant whose queue was empty gets in line at the tail."""
        if tenant not in self.order:
            self.order.append(tenant)

    def leave(self, tenant: str) -> None:
        """A tenant whose queue emptied leaves the ring (its turn, if it had one, ends)."""
        if self.order and self.order[0] == tenant:
            self.used = 0
        if tenant in self.order:
            self.order.remove(tenant)

    def took(self, tenant: str, weight: int) -> None:
        """One item of ``tenant`` left, in ring order: tenants ahead of it were passed over
        (their items held back or gone) and go to the tail; its turn ends after ``weight``."""
        if tenant not in self.order:
            return
        ahead = self.order.index(tenant)
        if ahead:
            self.order.rotate(-ahead)
            self.used = 0
        self.used += 1
        if self.used >= weight:
            self.order.rotate(-1)
            self.used = 0


class FairQueue:
    """One priority's queues, one per tenant, with its ring. Insertion-ordered dicts make each
    queue O(1) to remove from in the middle."""

    def __init__(self) -> None:
        self._queues: dict[str, dict[QueueItem, None]] = {}
        self.ring = TenantRing()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def __contains__(self, item: QueueItem) -> bool:
        return item in self._queues.get(item.tenant, {})

    def push(self, item: QueueItem) -> None:
        self._queues.setdefault(item.tenant, {})[item] = None
        self.ring.join(item.tenant)

    def pop(self, item: QueueItem) -> bool:
        """Drop ``item``; False when it was not queued."""
        queue = self._queues.get(item.tenant)
        if queue is None or queue.pop(item, 0) is not None:
            return False
        if not queue:
            del self._queues[item.tenant]
            self.ring.leave(item.tenant)
        return True

    def take(self, item: QueueItem, weights: Mapping[str, int] | None) -> bool:
        """Drop ``item`` as dispatched, advancing the ring; False when it was not queued."""
        if item not in self:
            return False
        self.ring.took(item.tenant, weight_of(weights, item.tenant))
        return self.pop(item)

    def by_tenant(self) -> dict[str, int]:
        return {tenant: len(q) for tenant, q in self._queues.items()}

    def peek(self, count: int, weights: Mapping[str, int] | None) -> list[QueueItem]:
        """The first ``count`` items in turn order: from the head (the rest of its turn), each
        tenant up to its weight, round after round until ``count`` or every queue is read."""
        tenants = list(itertools.islice(self.ring.order, count))
        heads: list[Iterator[QueueItem]] = [iter(self._queues[t]) for t in tenants]
        out: list[QueueItem] = []
        live = set(range(len(tenants)))
        first = True
        while len(out) < count and live:
            for i, tenant in enumerate(tenants):
                if i not in live or len(out) >= count:
                    continue
                quota = weight_of(weights, tenant) - (self.ring.used if first and i == 0 else 0)
                want = min(quota, count - len(out))
                got = list(itertools.islice(heads[i], max(0, want)))
                out += got
                if len(got) < want:
                    live.discard(i)
            first = False
        return out
