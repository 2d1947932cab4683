"""``Operations``: what an operator asks of a running fleet: workers, queues, the leader, and
pause / resume of a priority queue or a task type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.coordination.protocol import Coordination, Lease, WorkerInfo
from conveyor.errors import ValidationError
from conveyor.models import Priority, check_task_type
from conveyor.store.protocol import TaskStore

PRIORITY_NAMES = frozenset(p.label for p in Priority)


@dataclass(frozen=True, slots=True)
class QueueState:
    lengths: dict[str, int]
    paused: set[str]


@dataclass(frozen=True, slots=True)
class SchedulerState:
    leader: Lease | None
    queues: QueueState


class Operations:
    def __init__(self, store: TaskStore, coordination: Coordination) -> None:
        self._store = store
        self._coord = coordination

    async def live_workers(self) -> list[WorkerInfo]:
        return sorted(await self._coord.registry.live_workers(), key=lambda w: w.worker_id)

    async def worker_records(self) -> list[dict[str, Any]]:
        return await self._store.list_worker_records()

    async def queues(self) -> QueueState:
        return QueueState(await self._coord.queues.lengths(), await self._coord.queues.paused())

    async def scheduler(self) -> SchedulerState:
        return SchedulerState(await self._coord.lease.current(), await self.queues())

    async def set_paused(self, name: str, paused: bool) -> QueueState:
        """``name`` is a priority (``high``, ``normal``, ``low``) or a task type."""
        if name not in PRIORITY_NAMES:
            try:
                check_task_type(name)
            except ValidationError:
                raise ValidationError(
                    f"{name!r} is neither a priority (high, normal, low) nor a valid task type"
                ) from None
        await self._coord.queues.set_paused(name, paused)
        return await self.queues()
