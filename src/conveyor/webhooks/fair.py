"""``FairQueue``: per-destination FIFO queues served round-robin, with a cap on the items in
flight per destination and on the items held in all and per destination.

Why: with one shared FIFO, a destination that answers slowly (or never) ends up holding every
delivery slot, and a fast receiver's callback waits behind it (issue 10, finding 10). Here each
destination (``host:port``) has its own queue; ``take`` visits destinations in turn and skips
those already at their in-flight cap, so a slow destination holds at most ``per_key`` slots and
every other destination keeps being served. What it may hold (queued, in flight or waiting to
be tried again) is capped too (``max_per_key``), so a dead receiver's backlog cannot fill the
shared bound and get the others' deliveries dropped.

An item's life: ``admit`` → ``take`` → ``done`` → ``again`` (back in its queue, for another try)
or ``forget`` (settled). Pure bookkeeping, no I/O and no clock: the listener decides when.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, *, per_key: int, max_items: int, max_per_key: int) -> None:
        self._per_key = per_key
        self._max_items = max_items
        self._max_per_key = max_per_key
        # Destinations with queued items, in the order they are next served.
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()
        self._in_flight: Counter[str] = Counter()
        self._held: Counter[str] = Counter()

    @property
    def held(self) -> int:
        """Items admitted and not yet forgotten: queued, in flight or between tries."""
        return self._held.total()

    def admit(self, key: str, item: T) -> bool:
        """Queue a new ``item`` for ``key``; False (not queued) when a bound is reached."""
        if self.held >= self._max_items or self._held[key] >= self._max_per_key:
            return False
        self._held[key] += 1
        self.again(key, item)
        return True

    def again(self, key: str, item: T) -> None:
        """Queue an admitted ``item`` for another try (never refused: it is already held)."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(item)

    def take(self) -> tuple[str, T] | None:
        """The next item of the first destination in turn that is below its in-flight cap
        (that destination then goes to the back of the turn), or None if none can go now."""
        for key, queue in self._queues.items():
            if self._in_flight[key] >= self._per_key:
                continue
            item = queue.popleft()
            self._in_flight[key] += 1
            if queue:
                self._queues.move_to_end(key)
            else:
                del self._queues[key]
            return key, item
        return None

    def done(self, key: str) -> None:
        """A try taken for ``key`` finished (either way): its slot is free again."""
        self._in_flight[key] -= 1
        if not self._in_flight[key]:
            del self._in_flight[key]

    def forget(self, key: str) -> None:
        """An item of ``key`` is settled (sent or given up on): it no longer counts."""
        self._held[key] -= 1
        if not self._held[key]:
            del self._held[key]
