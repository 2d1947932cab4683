"""In-process coordination for standalone mode: the same contracts as Redis, in dicts.

Everything runs on one event loop, so each method is atomic by construction (no ``await``
between reading and writing shared state).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace

from conveyor.coordination.fair import FairQueue
from conveyor.coordination.heads import Heads, read_heads
from conveyor.coordination.protocol import AttemptRef, Coordination, Reaped
from conveyor.errors import StaleEpoch
from conveyor.models import Lease, Priority, QueueItem, WorkerInfo


class LocalCoordination:
    """All five coordination protocols over plain Python containers."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # A queue per tenant in each priority, served in turns (``fair``).
        self._queues: dict[Priority, FairQueue] = {p: FairQueue() for p in Priority}
        self._delayed: list[tuple[float, int, QueueItem]] = []
        self._delayed_live: dict[QueueItem, int] = {}
        self._seq = itertools.count()
        self._worker_queues: dict[str, dict[QueueItem, None]] = defaultdict(dict)
        self._active: dict[str, dict[QueueItem, None]] = defaultdict(dict)
        self._worker_wakeups: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}
        self._drains: dict[str, tuple[float, float]] = {}  # worker → (started_at, expires)
        self._work = asyncio.Event()
        self._paused: set[str] = set()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lease: tuple[Lease, float] | None = None
        self._status: tuple[dict[str, float], float] | None = None
        self._schedulers: dict[str, tuple[float, float]] = {}  # holder -> (seen, expiry)
        self._epoch = 0
        self._cancel_flags: dict[AttemptRef, float] = {}
        self._listeners: set[asyncio.Queue[AttemptRef]] = set()

    def as_coordination(self) -> Coordination:
        return Coordination(self, self, self, self, self, self)

    async def close(self) -> None:
        self._work.set()

    # -- TaskQueues ---------------------------------------------------------------------------

    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        for item in items:
            self._queues[item.priority].push(item)
        if items:
            self._work.set()

    async def schedule(self, items: Sequence[tuple[QueueItem, float]]) -> None:
        for item, due in items:
            seq = next(self._seq)
            self._delayed_live[item] = seq
            heapq.heappush(self._delayed, (due, seq, item))

    async def promote_due(self, now: float, limit: int) -> int:
        moved: list[QueueItem] = []
        while self._delayed and self._delayed[0][0] <= now and len(moved) < limit:
            _, seq, item = heapq.heappop(self._delayed)
            if self._delayed_live.get(item) == seq:
                del self._delayed_live[item]
                moved.append(item)
        await self.enqueue(moved)
        return len(moved)

    async def peek(
        self, priority: Priority, count: int, weights: Mapping[str, int] | None = None
    ) -> list[QueueItem]:
        return self._queues[priority].peek(count, weights)

    async def heads(
        self, depth: int, weights: Mapping[str, int] | None = None, every: bool = False
    ) -> Heads:
        return await read_heads(self, depth, weights, every)

    async def assign(
        self, epoch: int, moves: Sequence[tuple[QueueItem, str]], within: int | None = None,
        weights: Mapping[str, int] | None = None,
    ) -> int:
        # A dict finds an item in O(1) wherever it sits: ``within`` bounds nothing here.
        self._check_epoch(epoch)
        moved = 0
        for item, worker_id in moves:
            if self._queues[item.priority].take(item, weights):
                self._worker_queues[worker_id][item] = None
                self._worker_wakeups[worker_id].set()
                moved += 1
        return moved

    async def remove(self, items: Sequence[QueueItem]) -> None:
        for item in items:
            self._queues[item.priority].pop(item)
            self._delayed_live.pop(item, None)

    async def tenant_lengths(self) -> dict[str, dict[str, int]]:
        return {p.label: q.by_tenant() for p, q in self._queues.items()}

    async def lengths(self) -> dict[str, int]:
        sizes = {p.label: len(q) for p, q in self._queues.items()}
        sizes["delayed"] = len(self._delayed_live)
        return sizes

    async def tracked(self, items: Sequence[QueueItem]) -> set[str]:
        found = {
            i.task_id for i in items if i in self._queues[i.priority] or i in self._delayed_live
        }
        wanted = {i.task_id for i in items} - found
        if wanted:
            places = [*self._worker_queues.values(), *self._active.values()]
            found |= {i.task_id for place in places for i in place if i.task_id in wanted}
        return found

    async def wait_for_work(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), timeout)
        self._work.clear()

    async def set_paused(self, name: str, paused: bool) -> None:
        if paused:
            self._paused.add(name)
        else:
            self._paused.discard(name)
            self._work.set()

    async def paused(self) -> set[str]:
        return set(self._paused)

    async def inflight(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for place in (*self._worker_queues.values(), *self._active.values()):
            for item in place:
                counts[item.tenant, item.task_type] += 1
        return dict(counts)

    async def take_tokens(
        self, task_type: str, rate: float, wanted: int, now: float, whole: bool = False
    ) -> int:
        burst = max(1.0, rate)
        tokens, last = self._buckets.get(task_type, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * rate)
        granted = min(wanted, int(tokens))
        if whole and granted < wanted:
            granted = 0
        self._buckets[task_type] = (tokens - granted, now)
        return granted

    # -- WorkerQueues -------------------------------------------------------------------------

    async def fetch(self, worker_id: str, count: int, timeout: float) -> list[QueueItem]:
        own = self._worker_queues[worker_id]
        if not own:
            wakeup = self._worker_wakeups[worker_id]
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), timeout)
            except TimeoutError:
                return []
        taken = list(itertools.islice(own, count))
        active = self._active[worker_id]
        for item in taken:
            del own[item]
            active[item] = None
        return taken

    async def ack(self, worker_id: str, items: Sequence[QueueItem]) -> None:
        active = self._active[worker_id]
        for item in items:
            active.pop(item, None)
        if items and any(self._queues.values()):
            self._work.set()  # capacity was freed: the dispatcher may have queued work to place

    async def active(self, worker_id: str) -> list[QueueItem]:
        return list(self._active.get(worker_id, {}))

    async def hand_back(self, worker_id: str) -> list[QueueItem]:
        items = list(self._worker_queues.pop(worker_id, {}))
        await self.enqueue(items)
        return items

    # -- Registry -----------------------------------------------------------------------------

    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        now = self._clock()
        _, expires = self._workers.get(info.worker_id, (info, now))
        self._workers[info.worker_id] = (info, now + ttl)
        if expires <= now:  # joined: the dispatcher may have queued work to place
            self._work.set()

    async def live_workers(self) -> list[WorkerInfo]:
        now = self._clock()
        live = []
        for worker_id, (info, expires) in self._workers.items():
            if expires > now:
                load = len(self._worker_queues[worker_id]) + len(self._active[worker_id])
                live.append(replace(info, load=load))
        return live

    async def expired_workers(self, now: float) -> list[str]:
        return [wid for wid, (_, expires) in self._workers.items() if expires <= now]

    async def disconnected(self, worker_ids: Sequence[str]) -> set[str]:
        """In-process workers share the scheduler's process: none can vanish on its own."""
        return set()

    async def reap(self, epoch: int, worker_id: str) -> Reaped:
        self._check_epoch(epoch)
        self._workers.pop(worker_id, None)
        queued = await self.hand_back(worker_id)
        active = list(self._active.pop(worker_id, {}))
        return Reaped(worker_id, queued, active)

    async def deregister(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)
        self._worker_queues.pop(worker_id, None)
        self._active.pop(worker_id, None)
        self._drains.pop(worker_id, None)

    async def request_drain(self, worker_id: str, started_at: float, ttl: float) -> None:
        self._drains[worker_id] = (started_at, self._clock() + ttl)

    async def drain_requested(self, worker_id: str) -> float | None:
        held = self._drains.get(worker_id)
        return held[0] if held is not None and held[1] > self._clock() else None

    # -- LeaderLease --------------------------------------------------------------------------

    async def acquire(self, holder: str, ttl: float, min_epoch: int = 0) -> Lease | None:
        if await self.current() is not None:
            return None
        self._epoch = max(self._epoch, min_epoch) + 1
        lease = Lease(holder, self._epoch)
        self._lease = (lease, self._clock() + ttl)
        return lease

    async def renew(self, lease: Lease, ttl: float) -> bool:
        if await self.current() != lease:
            return False
        self._lease = (lease, self._clock() + ttl)
        return True

    async def release(self, lease: Lease) -> None:
        if await self.current() == lease:
            self._lease = None

    async def current(self) -> Lease | None:
        if self._lease is None or self._lease[1] <= self._clock():
            return None
        return self._lease[0]

    async def publish_status(self, status: dict[str, float], ttl: float) -> None:
        self._status = (dict(status), self._clock() + ttl)

    async def status(self) -> dict[str, float]:
        if self._status is None or self._status[1] <= self._clock():
            return {}
        return dict(self._status[0])

    async def announce(self, holder: str, seen: float, ttl: float) -> None:
        self._schedulers[holder] = (seen, self._clock() + ttl)

    async def withdraw(self, holder: str) -> None:
        self._schedulers.pop(holder, None)

    async def schedulers(self) -> dict[str, float]:
        now = self._clock()
        return {h: seen for h, (seen, expiry) in self._schedulers.items() if expiry > now}

    def _check_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            raise StaleEpoch(f"epoch {epoch} is stale; current epoch is {self._epoch}")

    # -- CancelSignals ------------------------------------------------------------------------

    async def request(self, attempt: AttemptRef, ttl: float) -> None:
        now = self._clock()
        self._cancel_flags = {k: v for k, v in self._cancel_flags.items() if v > now}
        self._cancel_flags[attempt] = now + ttl
        for listener in self._listeners:
            listener.put_nowait(attempt)

    async def requested(self, attempts: Sequence[AttemptRef]) -> set[AttemptRef]:
        now = self._clock()
        return {a for a in attempts if self._cancel_flags.get(a, 0.0) > now}

    async def listen(self) -> AsyncIterator[AttemptRef]:
        inbox: asyncio.Queue[AttemptRef] = asyncio.Queue()
        self._listeners.add(inbox)
        try:
            while True:
                yield await inbox.get()
        finally:
            self._listeners.discard(inbox)

