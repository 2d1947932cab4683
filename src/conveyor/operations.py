"""``Operations``: what an operator asks of a running fleet: workers, queues, the leader, and
pause / resume of a priority queue or a task type.

The fleet (workers, leader, paused queues) is shared by every tenant; what it holds of a
tenant's is not. For a tenant-bound caller (``tenant`` set) counts come from that tenant's
rows in SQL (the queues themselves hold every tenant's items), and type names that only other
tenants configured are left out of worker listings and the paused set, so nothing tells one
tenant what another runs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from conveyor.audit import Action, Actor, AuditEntry
from conveyor.coordination.protocol import Coordination
from conveyor.errors import NotFound, ValidationError
from conveyor.models import (
    Lease,
    Priority,
    TaskStatus,
    WorkerInfo,
    WorkerRecord,
    check_task_type,
)
from conveyor.store.protocol import AuditLog, TaskConfigs, TaskStats, WorkerRecords

PRIORITY_NAMES = frozenset(p.label for p in Priority)
DRAIN_TTL = 86_400.0  # a drain request waits this long for its worker's next heartbeat


@dataclass(frozen=True, slots=True)
class QueueState:
    lengths: dict[str, int]
    paused: set[str]
    no_worker: dict[str, int] = field(default_factory=dict)  # type → pending tasks no live
    # worker runs: the dispatcher leaves them queued until a worker that runs the type comes
    tenants: dict[str, dict[str, int]] = field(default_factory=dict)  # priority → tenant → n


def unrunnable(
    by_status: Mapping[tuple[str, str], int], workers: Iterable[WorkerInfo]
) -> dict[str, int]:
    """Pending tasks by type, for the types no live worker runs (pure; the API, the CLI and
    the metric all show this one answer)."""
    live = list(workers)
    pending = str(TaskStatus.PENDING)
    return {
        task_type: n
        for (task_type, status), n in sorted(by_status.items())
        if status == pending and n and not any(w.supports(task_type) for w in live)
    }


@dataclass(frozen=True, slots=True)
class SchedulerState:
    leader: Lease | None
    queues: QueueState
    duties: dict[str, float]  # duty name → when the leader last ran it
    standby: dict[str, float]  # live schedulers but the leader → when each last announced


@dataclass(frozen=True, slots=True)
class Stats:
    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    window: float
    created: int  # in the window
    finished: dict[str, int]  # in the window, by final status


class Operations:
    def __init__(
        self, workers: WorkerRecords, stats: TaskStats, coordination: Coordination,
        audit: AuditLog | None = None, configs: TaskConfigs | None = None,
    ) -> None:
        """``audit`` None: pause / resume are not audited (read-only uses, tests)."""
        self._workers = workers
        self._stats = stats
        self._coord = coordination
        self._audit = audit
        self._configs = configs

    async def live_workers(self, tenant: str | None = None) -> list[WorkerInfo]:
        live = sorted(await self._coord.registry.live_workers(), key=lambda w: w.worker_id)
        hidden = await self._hidden_types(tenant)
        return [replace(w, types=tuple(t for t in w.types if t not in hidden)) for w in live]

    async def worker_records(self, tenant: str | None = None) -> list[WorkerRecord]:
        hidden = await self._hidden_types(tenant)
        return [
            replace(r, types=tuple(t for t in r.types if t not in hidden))
            for r in await self._workers.list_worker_records()
        ]

    async def _hidden_types(self, tenant: str | None) -> frozenset[str]:
        """Types configured by other tenants and not by ``tenant`` (none for None)."""
        if tenant is None or self._configs is None:
            return frozenset()
        configs = await self._configs.list_configs()
        own = {c.task_type for c in configs if c.tenant == tenant}
        return frozenset(c.task_type for c in configs if c.task_type not in own)

    async def queues(
        self, tenant: str | None = None, counts: Mapping[tuple[str, str], int] | None = None,
        own_queues: dict[str, int] | None = None,
    ) -> QueueState:
        """The queues as ``tenant`` may see them (None: all of them, with every tenant's share
        of each priority). ``counts`` ((type, status) → n) and ``own_queues`` (a tenant's
        pending per priority) are read here unless the caller read them already (the console
        passes its bounded reads)."""
        if counts is None:
            counts = await self._stats.count_by_status(tenant)
        stranded = unrunnable(counts, await self.live_workers())
        queues = self._coord.queues
        paused = await queues.paused()
        if tenant is None:
            return QueueState(await queues.lengths(), paused, stranded,
                              await queues.tenant_lengths())
        own = {task_type for task_type, _ in counts}
        hidden = await self._hidden_types(tenant)
        if own_queues is None:
            own_queues = await self._stats.count_pending_by_priority(tenant)
        return QueueState(
            own_queues,
            {p for p in paused if p in PRIORITY_NAMES or (p in own and p not in hidden)},
            stranded,
        )

    async def scheduler(
        self, tenant: str | None = None, counts: Mapping[tuple[str, str], int] | None = None,
        own_queues: dict[str, int] | None = None,
    ) -> SchedulerState:
        lease = self._coord.lease
        leader = await lease.current()
        live = await lease.schedulers()
        standby = {h: seen for h, seen in live.items() if leader is None or h != leader.holder}
        return SchedulerState(leader, await self.queues(tenant, counts, own_queues),
                              await lease.status(), standby)

    async def stats(self, window: float, now: float, tenant: str | None = None) -> Stats:
        counts = await self._stats.count_by_status(tenant)
        by_status: dict[str, int] = {}
        by_type: dict[str, dict[str, int]] = {}
        for (task_type, status), n in counts.items():
            by_status[status] = by_status.get(status, 0) + n
            by_type.setdefault(task_type, {})[status] = n
        created, finished = await self._stats.recent(now - window, tenant)
        return Stats(by_status, by_type, window, created, finished)

    async def drain(self, worker_id: str) -> WorkerInfo:
        """Ask one live worker to drain: it takes no new work, hands back what was queued for
        it, lets its running tasks finish, then stays registered as draining, idle, until its
        process stops (``Worker.idle``). The request names the worker's process (its
        ``started_at``), so a later process under the same id is not drained by it."""
        found = next((w for w in await self._coord.registry.live_workers()
                      if w.worker_id == worker_id), None)
        if found is None:
            raise NotFound(f"no live worker {worker_id!r}")
        await self._coord.registry.request_drain(worker_id, found.started_at, DRAIN_TTL)
        return found

    async def set_paused(
        self, name: str, paused: bool, tenant: str | None = None, *,
        actor: Actor | None = None,
    ) -> QueueState:
        """``name`` is a priority (``high``, ``normal``, ``low``) or a task type. The pause
        flag lives in the coordination backend, not in SQL: the audit row is written right
        after the flag changed, so a refused change writes none (design.md §11)."""
        if name not in PRIORITY_NAMES:
            try:
                check_task_type(name)
            except ValidationError:
                raise ValidationError(
                    f"{name!r} is neither a priority (high, normal, low) nor a valid task type"
                ) from None
        was = name in await self._coord.queues.paused()
        await self._coord.queues.set_paused(name, paused)
        if self._audit is not None:
            action = Action.QUEUE_PAUSE if paused else Action.QUEUE_RESUME
            entry = AuditEntry(actor or Actor(None), action, name, {"paused": was},
                               {"paused": paused})
            await self._audit.write(entry, time.time())
        return await self.queues(tenant)
