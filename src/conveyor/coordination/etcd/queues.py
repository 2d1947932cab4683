"""``TaskQueues`` over etcd: ordered keys per priority and tenant with a ring of turns
(``plan``), the delayed set, dispatch into worker queues fenced by the epoch, the wake key,
pause flags and token buckets, each change one transaction."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence

from conveyor.coordination.etcd.client import (
    TXN_ITEMS,
    Compare,
    EtcdClient,
    Kv,
    Op,
    chunks,
    unavailable_on_loss,
)
from conveyor.coordination.etcd.layout import Layout, Part
from conveyor.coordination.etcd.plan import Plan, load_ring, run_cas
from conveyor.coordination.fair import FairQueue
from conveyor.coordination.heads import Heads, read_heads
from conveyor.errors import BackendUnavailable, StaleEpoch
from conveyor.models import Priority, QueueItem


def epoch_compare(layout: Layout, epoch: int) -> Compare:
    """The fence every dispatch and reap carries: the counter still holds the caller's epoch
    (a missing counter is epoch 0, as in the other backends)."""
    if epoch == 0:
        return ("version", layout.epoch, 0)
    return ("value", layout.epoch, str(epoch).encode())


async def check_epoch(client: EtcdClient, layout: Layout, epoch: int) -> None:
    found = await client.get(layout.epoch)
    current = int(found.value) if found else 0
    if current != epoch:
        raise StaleEpoch(f"epoch {epoch} is stale; current epoch is {current}")


#: A promotion spends four operations an item (two deletes, two puts) where other moves spend
#: two: half a transaction's worth keeps it under etcd's 128 operations (a fault run with many
#: retries due at once hit "too many operations in txn request" with 40, and stalled them).
PROMOTE_ITEMS = TXN_ITEMS // 2


def decode_values(kvs: Sequence[Kv]) -> list[QueueItem]:
    return [QueueItem.decode(kv.value) for kv in kvs]


class EtcdTaskQueues(Part):
    _seen_wake = 0  # the wake key's revision the dispatcher last saw

    async def _push(self, items: Sequence[QueueItem], extra: Sequence[Op] = (),
                    compares: Sequence[Compare] = ()) -> tuple[bool, int]:
        plan = Plan(self._c, self._l)
        await plan.load(items)
        pushed = sum(plan.push(i) for i in items)
        plan.ops += extra
        plan.compares += compares
        if pushed:
            plan.wake()
        return await plan.commit(), pushed

    @unavailable_on_loss
    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        """One transaction per ``TXN_ITEMS`` items (etcd's operation limit), in order."""
        for part in chunks(items):
            await run_cas(functools.partial(self._push, part))

    @unavailable_on_loss
    async def schedule(self, items: Sequence[tuple[QueueItem, float]]) -> None:
        """A delayed key per item; an item scheduled again keeps only its newest due time."""
        for part in chunks(list(dict(items).items())):
            await self._schedule(part)

    async def _schedule(self, latest_items: Sequence[tuple[QueueItem, float]]) -> None:
        latest = dict(latest_items)

        async def attempt() -> tuple[bool, None]:
            _, found = await self._c.snapshot(
                [(self._l.delayed_index(i), False, 0) for i in latest]
            )
            compares: list[Compare] = []
            ops: list[Op] = []
            for (item, due), kvs in zip(latest.items(), found, strict=True):
                index = self._l.delayed_index(item)
                compares.append(("mod", index, kvs[0].mod_revision if kvs else 0))
                if kvs:
                    ops.append(("delete", kvs[0].value))
                key = self._l.delayed(due)
                ops += [("put", key, item.encode().encode(), 0), ("put", index, key, 0)]
            return await self._c.txn(compares, ops), None

        await run_cas(attempt)

    @unavailable_on_loss
    async def promote_due(self, now: float, limit: int) -> int:
        moved = 0
        while moved < limit:
            step = await self._promote(now, min(PROMOTE_ITEMS, limit - moved))
            moved += step
            if step == 0:
                break
        return moved

    async def _promote(self, now: float, limit: int) -> int:
        async def attempt() -> tuple[bool, int]:
            due = await self._c.range(self._l.k("d/"), end=self._l.delayed_until(now),
                                      limit=limit)
            if not due:
                return True, 0
            compares: list[Compare] = [("mod", kv.key, kv.mod_revision) for kv in due]
            ops: list[Op] = []
            for kv in due:
                ops += [("delete", kv.key),
                        ("delete", self._l.delayed_index(QueueItem.decode(kv.value)))]
            done, _ = await self._push(decode_values(due), ops, compares)
            return done, len(due)

        return await run_cas(attempt)

    async def _fair_view(self, priority: Priority, count: int) -> FairQueue:
        ring = load_ring(await self._c.get(self._l.ring(priority)))
        view = FairQueue()
        tenants = list(ring.order)[:count]
        ranges = [(self._l.queue_prefix(priority, t), True, count) for t in tenants]
        _, found = await self._c.snapshot(ranges) if ranges else (0, [])
        for kvs in found:
            for queued in decode_values(kvs):
                view.push(queued)
        view.ring = ring
        return view

    @unavailable_on_loss
    async def peek(
        self, priority: Priority, count: int, weights: Mapping[str, int] | None = None
    ) -> list[QueueItem]:
        if count <= 0:
            return []
        return (await self._fair_view(priority, count)).peek(count, weights)

    async def heads(
        self, depth: int, weights: Mapping[str, int] | None = None, every: bool = False
    ) -> Heads:
        return await read_heads(self, depth, weights, every)

    @unavailable_on_loss
    async def assign(
        self, epoch: int, moves: Sequence[tuple[QueueItem, str]], within: int | None = None,
        weights: Mapping[str, int] | None = None,
    ) -> int:
        """One transaction: fenced by the epoch, the moved items' queue keys deleted and the
        worker queue keys written, the rings advanced. ``within`` bounds nothing here: the
        index finds every item at the cost of one key."""

        moved = 0
        for part in chunks(moves):
            moved += await self._assign(epoch, part, weights)
        return moved

    async def _assign(
        self, epoch: int, moves: Sequence[tuple[QueueItem, str]],
        weights: Mapping[str, int] | None,
    ) -> int:
        async def attempt() -> tuple[bool, int]:
            await check_epoch(self._c, self._l, epoch)
            plan = Plan(self._c, self._l)
            await plan.load([i for i, _ in moves], count=True)
            plan.compares.append(epoch_compare(self._l, epoch))
            moved = 0
            for queued, worker_id in moves:
                if plan.pop(queued, weights, dispatched=True):
                    key = self._l.worker_queue(worker_id) + self._l.seq().encode()
                    plan.ops.append(("put", key, queued.encode().encode(), 0))
                    moved += 1
            return await plan.commit(), moved

        return await run_cas(attempt)

    @unavailable_on_loss
    async def remove(self, items: Sequence[QueueItem]) -> None:
        for part in chunks(items, TXN_ITEMS // 2):
            await self._remove(part)

    async def _remove(self, items: Sequence[QueueItem]) -> None:
        async def attempt() -> tuple[bool, None]:
            plan = Plan(self._c, self._l)
            await plan.load(items, count=True)
            for queued in items:
                plan.pop(queued)
            _, found = await self._c.snapshot(
                [(self._l.delayed_index(i), False, 0) for i in items]
            )
            for queued, kvs in zip(items, found, strict=True):
                if kvs:
                    index = self._l.delayed_index(queued)
                    plan.compares.append(("mod", index, kvs[0].mod_revision))
                    plan.ops += [("delete", kvs[0].value), ("delete", index)]
            return await plan.commit(), None

        await run_cas(attempt)

    @unavailable_on_loss
    async def tenant_lengths(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for p in Priority:
            ring = load_ring(await self._c.get(self._l.ring(p)))
            counts = {t: await self._c.count(self._l.queue_prefix(p, t)) for t in ring.order}
            found[p.label] = {t: n for t, n in counts.items() if n}
        return found

    @unavailable_on_loss
    async def lengths(self) -> dict[str, int]:
        sizes = {p: sum(n.values()) for p, n in (await self.tenant_lengths()).items()}
        return sizes | {"delayed": await self._c.count(self._l.k("d/"))}

    @unavailable_on_loss
    async def tracked(self, items: Sequence[QueueItem]) -> set[str]:
        """The indexes answer for the priority queues and the delayed set (one key per item);
        the registered workers' queues and active lists are read whole (the fleet's slots).
        As on Redis, what sits with a worker no longer registered is not tracked."""
        if not items:
            return set()
        ranges = [(self._l.index(i), False, 0) for i in items]
        ranges += [(self._l.delayed_index(i), False, 0) for i in items]
        ranges += [(self._l.worker_index(), True, 0), (self._l.worker_all(), True, 0)]
        _, found = await self._c.snapshot(ranges)
        n = len(items)
        hits = {i.task_id for i, a, b in zip(items, found[:n], found[n:2 * n], strict=True)
                if a or b}
        workers = {kv.key[len(self._l.worker_index()):] for kv in found[-2]}
        wanted = {i.task_id for i in items}
        for kv in found[-1]:
            worker = kv.key[len(self._l.worker_all()):].split(b"/", 1)[0]
            task_id = QueueItem.decode(kv.value).task_id
            if worker in workers and task_id in wanted:
                hits.add(task_id)
        return hits

    async def wait_for_work(self, timeout: float) -> None:
        """Watch the wake key from the last revision seen; returns at once if it moved since."""
        try:
            found = await self._c.get(self._l.wake)
        except BackendUnavailable:  # a lost etcd is waited out like an empty queue
            found = None
        revision = found.mod_revision if found else 0
        if revision > self._seen_wake:
            self._seen_wake = revision
            return
        if await self._c.wait_change(self._l.wake, False, self._seen_wake, timeout):
            latest = await self._c.get(self._l.wake)
            self._seen_wake = latest.mod_revision if latest else self._seen_wake

    @unavailable_on_loss
    async def set_paused(self, name: str, paused: bool) -> None:
        if paused:
            await self._c.put(self._l.paused(name), name.encode())
        else:
            await self._c.txn([], [("delete", self._l.paused(name)),
                                   ("put", self._l.wake, b"1", 0)])

    @unavailable_on_loss
    async def paused(self) -> set[str]:
        return {kv.value.decode() for kv in await self._c.range(self._l.paused(), prefix=True)}

    @unavailable_on_loss
    async def inflight(self) -> dict[tuple[str, str], int]:
        held = decode_values(await self._c.range(self._l.worker_all(), prefix=True))
        return dict(Counter((queued.tenant, queued.task_type) for queued in held))

    @unavailable_on_loss
    async def take_tokens(
        self, task_type: str, rate: float, wanted: int, now: float, whole: bool = False
    ) -> int:
        key = self._l.bucket(task_type)
        burst = max(1.0, rate)

        async def attempt() -> tuple[bool, int]:
            found = await self._c.get(key)
            tokens, last = json.loads(found.value) if found else (burst, now)
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            granted = min(wanted, int(tokens))
            if whole and granted < wanted:
                granted = 0
            compare: Compare = ("mod", key, found.mod_revision if found else 0)
            value = json.dumps([tokens - granted, now]).encode()
            return await self._c.txn([compare], [("put", key, value, 0)]), granted

        return await run_cas(attempt)
