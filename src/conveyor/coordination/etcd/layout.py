"""Every etcd key Conveyor uses, under one prefix (docs/design.md §13).

=================================  =======================================================
key                                value and use
=================================  =======================================================
``q/{p}/{tenant}/{seq}``           a pending ``QueueItem``; keys sort by ``seq`` (time-ordered)
``qi/{item}``                      the ``q/...`` key holding ``item`` (one copy per item)
``ring/{p}``                       JSON ``{"order": [...], "used": n}``: the tenants' turns
``d/{due}/{seq}``, ``di/{item}``   the delayed set (fixed-width due time sorts) and its index
``w/{id}/q/{seq}``                 items assigned to a worker, not yet taken
``w/{id}/a/{item}``                items the worker took and runs (reliable fetch)
``nodes/worker/{id}``              ``WorkerInfo`` JSON with its expiry, bound to an etcd lease
``nodes/scheduler/{id}``           a live scheduler (leader or standby): JSON seen + expiry
``wi/{id}``                        expiry of every registered worker (kept until reaped)
``leader``, ``epoch``              the lease JSON (holder, epoch, expiry); the fencing counter
``status``                         the leader's duties, JSON with expiry
``cancel/{id}:{n}``                cancel flag of attempt ``n``; workers watch the prefix
``wake``                           touched by every enqueue and ack; the dispatcher watches it
``paused/{name}``                  a paused priority or task type
``bucket/{type}``                  token bucket JSON ``[tokens, last]``
=================================  =======================================================

Items and tenants are percent-quoted inside key names, so a ``/`` in a task type cannot make
one key look like another. Expiry that callers observe is always a timestamp compared with the
backend's clock (sub-second TTLs work as on Redis); etcd leases only collect the keys later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from conveyor.models import Priority, QueueItem

if TYPE_CHECKING:
    from conveyor.coordination.etcd.client import EtcdClient


def q(text: str) -> str:
    return quote(text, safe="")


@dataclass(slots=True)
class Layout:
    prefix: str = "conveyor:"
    leader_key: str = "leader"
    _last: int = field(default=0, repr=False)

    def k(self, name: str) -> bytes:
        return f"{self.prefix}{name}".encode()

    def seq(self) -> str:
        """A per-process strictly rising, time-ordered sequence number (fixed width)."""
        self._last = max(self._last + 1, time.time_ns())
        return f"{self._last:020d}"

    def queue_prefix(self, priority: Priority, tenant: str) -> bytes:
        return self.k(f"q/{priority.label}/{q(tenant)}/")

    def queue_all(self, priority: Priority | None = None) -> bytes:
        return self.k(f"q/{priority.label}/" if priority is not None else "q/")

    def index(self, item: QueueItem) -> bytes:
        return self.k(f"qi/{q(item.encode())}")

    def ring(self, priority: Priority) -> bytes:
        return self.k(f"ring/{priority.label}")

    def delayed(self, due: float) -> bytes:
        return self.k(f"d/{max(0.0, due):020.6f}/{self.seq()}")

    def delayed_until(self, now: float) -> bytes:
        """The range end covering every delayed key due at or before ``now``."""
        return self.k(f"d/{max(0.0, now):020.6f}/\xff")

    def delayed_index(self, item: QueueItem) -> bytes:
        return self.k(f"di/{q(item.encode())}")

    def worker_queue(self, worker_id: str) -> bytes:
        return self.k(f"w/{q(worker_id)}/q/")

    def worker_active(self, worker_id: str, item: QueueItem | None = None) -> bytes:
        return self.k(f"w/{q(worker_id)}/a/{q(item.encode()) if item else ''}")

    def worker_all(self, worker_id: str | None = None) -> bytes:
        return self.k(f"w/{q(worker_id)}/" if worker_id is not None else "w/")

    def node(self, worker_id: str) -> bytes:
        return self.k(f"nodes/worker/{q(worker_id)}")

    def drain(self, worker_id: str) -> bytes:
        """A drain request for one worker process: its ``started_at``, under an etcd lease."""
        return self.k(f"drain/{q(worker_id)}")

    def scheduler_node(self, holder: str = "") -> bytes:
        return self.k(f"nodes/scheduler/{q(holder)}" if holder else "nodes/scheduler/")

    def worker_index(self, worker_id: str = "") -> bytes:
        return self.k(f"wi/{q(worker_id)}")

    @property
    def leader(self) -> bytes:
        return self.k(self.leader_key)

    @property
    def epoch(self) -> bytes:
        return self.k("epoch")

    @property
    def status(self) -> bytes:
        return self.k("status")

    def cancel(self, attempt: str = "") -> bytes:
        return self.k(f"cancel/{attempt}")

    @property
    def wake(self) -> bytes:
        return self.k("wake")

    def paused(self, name: str = "") -> bytes:
        return self.k(f"paused/{q(name)}" if name else "paused/")

    def bucket(self, task_type: str) -> bytes:
        return self.k(f"bucket/{q(task_type)}")


class Part:
    """What each of the five parts holds: the client, the key layout and the clock (expiry is
    a timestamp compared with it, see the module docstring)."""

    def __init__(
        self, client: EtcdClient, layout: Layout, clock: Callable[[], float] = time.time
    ) -> None:
        self._c = client
        self._l = layout
        self._clock = clock
