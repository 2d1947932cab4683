"""The coordination contracts (docs/design.md §3): queues, worker queues, registry, lease, cancels.

Five small protocols instead of one broker, so each duty depends only on what it uses. Two
implementations sit behind them: ``local`` (in-process, standalone mode) and ``redis``
(distributed). Both hold *ids only*; the SQL store is the truth and can rebuild everything here.

The values they pass (``QueueItem``, ``WorkerInfo``, ``Lease``) are domain values and live in
``models``; the store and the pure balancers use them without importing this layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from conveyor.coordination.heads import Heads
from conveyor.models import Lease, Priority, QueueItem, WorkerInfo


@dataclass(frozen=True, slots=True)
class Reaped:
    """What a dead worker held: ``queued`` went back to the priority queues already; ``active``
    were running and need a decision from the store (timeout + retry)."""

    worker_id: str
    queued: list[QueueItem] = field(default_factory=list)
    active: list[QueueItem] = field(default_factory=list)


class TaskQueues(Protocol):
    """Priority queues, the delayed set and the leader's move into worker queues."""

    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        """Append to the priority queues and wake the dispatcher."""

    async def schedule(self, items: Sequence[tuple[QueueItem, float]]) -> None:
        """Put items in the delayed set, each due at its timestamp."""

    async def promote_due(self, now: float, limit: int) -> int:
        """Move up to ``limit`` due items from the delayed set to their queues; return how many."""

    async def peek(
        self, priority: Priority, count: int, weights: Mapping[str, int] | None = None
    ) -> list[QueueItem]:
        """The first ``count`` items of one priority in dispatch order, left in place: the
        tenants with work take turns (weighted round-robin, ``coordination.fair``), starting
        with the rest of the current tenant's turn; each tenant's own items stay in order.
        ``weights`` maps a tenant to the items it may take per turn (absent: 1)."""

    async def heads(
        self, depth: int, weights: Mapping[str, int] | None = None, every: bool = False
    ) -> Heads:
        """The paused names and the heads of the unpaused priorities, high first, each
        ``depth`` deep and as ``peek`` orders them, in one read (the dispatcher asks on every
        pass). ``every``: read each unpaused priority; otherwise (strict order) a lower one
        only while the items read so far, those of paused types aside, number fewer than
        ``depth``."""

    async def assign(
        self, epoch: int, moves: Sequence[tuple[QueueItem, str]], within: int | None = None,
        weights: Mapping[str, int] | None = None,
    ) -> int:
        """Atomically move each item from its priority queue to a worker queue.

        Raises ``StaleEpoch`` if ``epoch`` is not the current one. Items no longer in their
        queue (cancelled meanwhile) are skipped; returns how many moved. ``within``: the items
        were peeked that deep, so each is looked for only among its queue's first ``within``
        (the search stays bounded when an item is gone); None looks through the whole queue.
        The moves come in ``peek`` order (per priority) and advance the tenants' ring as they
        go, with the same ``weights``, so the next ``peek`` continues where this one stopped.
        """

    async def remove(self, items: Sequence[QueueItem]) -> None:
        """Drop items from the priority queues and the delayed set (cancel, priority change)."""

    async def lengths(self) -> dict[str, int]:
        """``{"high": n, "normal": n, "low": n, "delayed": n}``."""

    async def tenant_lengths(self) -> dict[str, dict[str, int]]:
        """Queued items by priority label and tenant, for the tenants with work only; the cost
        follows the tenants with work, not the backlog."""

    async def tracked(self, items: Sequence[QueueItem]) -> set[str]:
        """The ids of those items that sit anywhere: priority queues or the delayed set (as
        that very item: id, type and priority), worker queues or active lists (by id). The
        cost grows with the items asked about and the fleet's slots, not with the backlog."""

    async def wait_for_work(self, timeout: float) -> None:
        """Return when something was enqueued (or after ``timeout``), so the dispatcher need
        not poll."""

    async def set_paused(self, name: str, paused: bool) -> None:
        """Pause or resume dispatch of a priority (``high``...) or a task type."""

    async def paused(self) -> set[str]:
        """Names currently paused."""

    async def inflight(self) -> dict[tuple[str, str], int]:
        """Tasks per (tenant, type) sitting in worker queues or active lists (fleet-wide
        concurrency, capped per tenant); read from the queue items, which carry both."""

    async def take_tokens(
        self, task_type: str, rate: float, wanted: int, now: float, whole: bool = False
    ) -> int:
        """Token bucket per type: refill ``rate`` tokens a second up to a one-second burst
        (at least one token); take up to ``wanted`` and return how many were granted.
        ``whole``: all ``wanted`` or none (a create quota admits a batch whole). The tenants'
        create quotas use buckets named ``@tenant:<name>``, a name no task type can have; the
        dispatcher's are the type, or ``type@tenant`` outside the default tenant."""


class WorkerQueues(Protocol):
    """A worker's own queue and its active list (reliable fetch)."""

    async def fetch(self, worker_id: str, count: int, timeout: float) -> list[QueueItem]:
        """Move up to ``count`` items from the worker queue to its active list, waiting up to
        ``timeout`` for the first one."""

    async def ack(self, worker_id: str, items: Sequence[QueueItem]) -> None:
        """Drop finished items from the active list, and wake ``wait_for_work`` if work is
        queued: capacity was freed, so the dispatcher may have it to place. With the queues
        empty a backend may leave the dispatcher asleep (the next enqueue wakes it)."""

    async def active(self, worker_id: str) -> list[QueueItem]:
        """What the active list holds (the worker compares it with what it really runs)."""

    async def hand_back(self, worker_id: str) -> list[QueueItem]:
        """Move everything still in the worker queue back to the priority queues (graceful
        shutdown); return what moved."""


class Registry(Protocol):
    """Live workers: heartbeat with TTL, listing with load, reaping of the dead."""

    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        """Keep the entry alive for ``ttl``; an entry that was absent or lapsed (the worker
        joins) also wakes ``wait_for_work``, so work already queued is placed on a new worker
        at once instead of at the dispatcher's next scan."""

    async def live_workers(self) -> list[WorkerInfo]: ...

    async def expired_workers(self, now: float) -> list[str]:
        """Workers still indexed whose heartbeat lapsed."""

    async def disconnected(self, worker_ids: Sequence[str]) -> set[str]:
        """Those of these workers known to hold no connection to the backend any more (their
        process is gone); empty where the backend cannot tell."""

    async def reap(self, epoch: int, worker_id: str) -> Reaped:
        """Remove a worker; its queued items go back to the priority queues atomically."""

    async def deregister(self, worker_id: str) -> None:
        """A clean exit: forget the worker (its queue must be empty or handed back first)."""

    async def request_drain(self, worker_id: str, started_at: float, ttl: float) -> None:
        """Ask the worker process that registered ``worker_id`` at ``started_at`` to drain (a
        later process under the same id is not concerned); the request lasts ``ttl``."""

    async def drain_requested(self, worker_id: str) -> float | None:
        """The ``started_at`` a drain request for ``worker_id`` names, if one stands."""


class LeaderLease(Protocol):
    """The scheduler lease with a fencing epoch that rises with every new holder."""

    async def acquire(self, holder: str, ttl: float, min_epoch: int = 0) -> Lease | None:
        """Take the lease if free, with an epoch above both the counter and ``min_epoch`` (the
        highest epoch the store has seen, so epochs keep rising after the backend lost its
        data)."""

    async def renew(self, lease: Lease, ttl: float) -> bool: ...

    async def release(self, lease: Lease) -> None: ...

    async def current(self) -> Lease | None: ...

    async def publish_status(self, status: dict[str, float], ttl: float) -> None:
        """The leader's duties and when each last ran, for operators (expires with ``ttl``)."""

    async def status(self) -> dict[str, float]: ...

    async def announce(self, holder: str, seen: float, ttl: float) -> None:
        """Scheduler ``holder`` (leader or standby) is alive as of ``seen``; forgotten after
        ``ttl`` unless announced again (every elector pass announces)."""

    async def withdraw(self, holder: str) -> None:
        """A clean stop: forget ``holder`` at once."""

    async def schedulers(self) -> dict[str, float]:
        """Live schedulers, each with when it last announced."""


class AttemptRef(NamedTuple):
    """One attempt of one task. A cancel names the attempt it stops, so a flag that outlives
    it can never reach the next attempt (a manual retry, a rerun after a crash)."""

    task_id: str
    attempt: int

    def encode(self) -> str:
        return f"{self.task_id}:{self.attempt}"

    @classmethod
    def decode(cls, text: str) -> AttemptRef:
        task_id, _, attempt = text.rpartition(":")
        return cls(task_id, int(attempt))


class CancelSignals(Protocol):
    """Cancel flags for running attempts, with a push channel for speed."""

    async def request(self, attempt: AttemptRef, ttl: float) -> None: ...

    async def requested(self, attempts: Sequence[AttemptRef]) -> set[AttemptRef]: ...

    def listen(self) -> AsyncIterator[AttemptRef]:
        """Yield attempts as cancel requests arrive (best effort; flags are the fallback)."""
        ...


@dataclass(frozen=True, slots=True)
class Coordination:
    """The five parts of one backend, built together by ``bootstrap`` and closed together."""

    queues: TaskQueues
    worker_queues: WorkerQueues
    registry: Registry
    lease: LeaderLease
    cancels: CancelSignals
    closer: Closer

    async def close(self) -> None:
        await self.closer.close()


class Closer(Protocol):
    async def close(self) -> None: ...
