"""``FairQueue``: per-destination FIFO queues served round-robin, with a cap on the items in
flight per destination.

Why: with one shared FIFO, a destination that answers slowly (or never) ends up holding every
delivery slot, and a fast receiver's callback waits behind it (issue 10, finding 10). Here each
destination (``host:port``) has its own queue; ``take`` visits destinations in turn and skips
those already at their in-flight cap, so a slow destination holds at most ``per_key`` slots and
every other destination keeps being served. Its backlog is capped too (``max_per_key``), so it
cannot fill the shared bound and get the others' deliveries dropped.

Pure bookkeeping, no I/O and no clock: the listener decides when to take and when an item is
done.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, *, per_key: int, max_items: int, max_per_key: int) -> None:
        self._per_key = per_key
        self._max_items = max_items
        self._max_per_key = max_per_key
        # Destinations with queued items, in the order they are next served.
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()
        self._in_flight: dict[str, int] = {}
        self._queued = 0

    @property
    def queued(self) -> int:
        return self._queued

    def put(self, key: str, item: T, *, force: bool = False) -> bool:
        """Queue ``item`` for ``key``; False (not queued) when a bound is reached.

        ``force`` skips the bounds: for a retry of an item that was already admitted, so a
        delivery once accepted is never dropped half-way through its tries.
        """
        queue = self._queues.get(key)
        if not force and (
            self._queued >= self._max_items
            or (queue is not None and len(queue) >= self._max_per_key)
        ):
            return False
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(item)
        self._queued += 1
        return True

    def take(self) -> tuple[str, T] | None:
        """The next item of the first destination in turn that is below its in-flight cap
        (that destination then goes to the back of the turn), or None if none can go now."""
        for key, queue in self._queues.items():
            if self._in_flight.get(key, 0) >= self._per_key:
                continue
            item = queue.popleft()
            self._queued -= 1
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            if queue:
                self._queues.move_to_end(key)
            else:
                del self._queues[key]
            return key, item
        return None

    def done(self, key: str) -> None:
        """An item taken for ``key`` finished (either way): its slot is free again."""
        left = self._in_flight[key] - 1
        if left:
            self._in_flight[key] = left
        else:
            del self._in_flight[key]
