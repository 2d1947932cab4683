"""One compare-and-swap over the fair priority queues: read, change in memory, commit once.

Every change to a priority's queues (a push, a pop, a dispatch) also rewrites that priority's
ring key (``ring/{p}``), so the ring's mod revision stands for the whole priority. A plan reads
the rings and the items' index keys, applies the same rules as ``coordination.fair`` (the
in-process reference: ``TenantRing`` itself does the turn keeping), and commits everything in
one transaction whose compares are the rings' revisions (plus whatever the caller adds, such
as the leader epoch). If another process got in between, the transaction fails and the caller
runs the plan again (``run_cas``): no read-then-write race, and no lock.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from conveyor.coordination.etcd.client import CAS_ATTEMPTS, Compare, EtcdClient, Kv, Op
from conveyor.coordination.etcd.layout import Layout
from conveyor.coordination.fair import TenantRing, weight_of
from conveyor.errors import BackendUnavailable
from conveyor.models import Priority, QueueItem

T = TypeVar("T")


def load_ring(kv: Kv | None) -> TenantRing:
    ring = TenantRing()
    if kv is not None:
        data = json.loads(kv.value)
        ring.order = deque(data["order"])
        ring.used = int(data["used"])
    return ring


def dump_ring(ring: TenantRing) -> bytes:
    return json.dumps({"order": list(ring.order), "used": ring.used}).encode()


class Plan:
    """Pushes and pops of one transaction, with the compares that make it safe."""

    def __init__(self, client: EtcdClient, layout: Layout) -> None:
        self.client = client
        self.layout = layout
        self.rings: dict[Priority, TenantRing] = {}
        self.revisions: dict[Priority, int] = {}
        self.where: dict[QueueItem, bytes | None] = {}
        self.counts: dict[tuple[Priority, str], int] = {}
        self.touched: set[Priority] = set()
        self.compares: list[Compare] = []
        self.ops: list[Op] = []

    async def load(self, items: Sequence[QueueItem], *, count: bool = False) -> None:
        """Read the three rings and where each item sits; ``count`` also counts the queues of
        the items' tenants, which popping needs to tell when a tenant's queue empties."""
        lay = self.layout
        ranges = [(lay.ring(p), False, 0) for p in Priority]
        ranges += [(lay.index(i), False, 0) for i in items]
        _, found = await self.client.snapshot(ranges)
        for p, kvs in zip(Priority, found, strict=False):
            self.rings[p] = load_ring(kvs[0] if kvs else None)
            self.revisions[p] = kvs[0].mod_revision if kvs else 0
        for item, kvs in zip(items, found[len(Priority):], strict=True):
            self.where[item] = kvs[0].value if kvs else None
        if count:
            for p, t in {(i.priority, i.tenant) for i in items if self.where[i]}:
                self.counts[(p, t)] = await self.client.count(lay.queue_prefix(p, t))

    def push(self, item: QueueItem) -> bool:
        """Queue ``item`` at its tenant's tail (the tenant joins the ring); False if queued."""
        if self.where.get(item):
            return False
        key = self.layout.queue_prefix(item.priority, item.tenant) + self.layout.seq().encode()
        self.ops += [("put", key, item.encode().encode(), 0),
                     ("put", self.layout.index(item), key, 0)]
        self.where[item] = key
        self.rings[item.priority].join(item.tenant)
        slot = (item.priority, item.tenant)
        if slot in self.counts:
            self.counts[slot] += 1
        self.touched.add(item.priority)
        return True

    def pop(self, item: QueueItem, weights: Mapping[str, int] | None = None,
            dispatched: bool = False) -> bool:
        """Drop ``item`` (``dispatched``: as the dispatcher's move, advancing the turns);
        False if it was not queued."""
        key = self.where.get(item)
        if not key:
            return False
        self.ops += [("delete", key), ("delete", self.layout.index(item))]
        self.where[item] = None
        ring = self.rings[item.priority]
        if dispatched:
            ring.took(item.tenant, weight_of(weights, item.tenant))
        slot = (item.priority, item.tenant)
        self.counts[slot] -= 1
        if self.counts[slot] <= 0:
            ring.leave(item.tenant)
        self.touched.add(item.priority)
        return True

    def wake(self) -> None:
        self.ops.append(("put", self.layout.wake, b"1", 0))

    def commit_parts(self) -> tuple[list[Compare], list[Op]]:
        compares = [*self.compares]
        ops = [*self.ops]
        for p in sorted(self.touched):
            compares.append(("mod", self.layout.ring(p), self.revisions[p]))
            ops.append(("put", self.layout.ring(p), dump_ring(self.rings[p]), 0))
        return compares, ops

    async def commit(self) -> bool:
        compares, ops = self.commit_parts()
        return await self.client.txn(compares, ops)


async def run_cas(attempt: Callable[[], Awaitable[tuple[bool, T]]]) -> T:
    """Run ``attempt`` (read, plan, commit) until its transaction succeeds."""
    for _ in range(CAS_ATTEMPTS):
        done, result = await attempt()
        if done:
            return result
    raise BackendUnavailable("etcd: too much contention, the transaction kept conflicting")
