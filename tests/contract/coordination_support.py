"""Helpers for the coordination contract tests (``test_coordination_*.py``).

The contract is ``protocol.py``; each test module runs it against the in-process and the Redis
backend (the ``coord`` fixture). ``local.py`` is the reference: every test must pass on both.
Timings use short TTLs and real sleeps only where a TTL has to lapse.
"""

from __future__ import annotations

from conveyor.coordination.protocol import Coordination
from conveyor.models import Priority, QueueItem, WorkerInfo

H, N, L = Priority.HIGH, Priority.NORMAL, Priority.LOW


def item(task_id: str, priority: Priority = N, task_type: str = "echo") -> QueueItem:
    return QueueItem(task_id, task_type, priority)


def worker(worker_id: str, **changes: object) -> WorkerInfo:
    fields: dict[str, object] = {
        "worker_id": worker_id,
        "host": "box-1",
        "pid": 4242,
        "capacity": 8,
        "types": ("echo", "mail.send"),
        "weight": 2.5,
        "started_at": 1000.5,
        "last_heartbeat": 1010.25,
        "draining": False,
    }
    fields.update(changes)
    return WorkerInfo(**fields)  # type: ignore[arg-type]


async def leader_epoch(coord: Coordination) -> int:
    lease = await coord.lease.acquire("scheduler-a", 30)
    assert lease is not None
    return lease.epoch
