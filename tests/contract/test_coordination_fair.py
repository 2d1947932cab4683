"""``TaskQueues`` between tenants: within a priority the tenants with work take turns, each up
to its weight, and ``assign`` moves the ring on so the next pass resumes where the last one
stopped (``coordination/fair.py`` is the reference, ``lua/fair.lua`` the Redis side).

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from conveyor.coordination.local import LocalCoordination
from conveyor.coordination.protocol import Coordination
from conveyor.coordination.redis import connect_redis
from conveyor.models import Priority, QueueItem
from conveyor.tenants import DEFAULT_TENANT

from .coordination_support import H, N, leader_epoch, worker

if TYPE_CHECKING:
    from .conftest import RedisSession


def of(tenant: str, n: int, priority: Priority = N) -> list[QueueItem]:
    """``n`` items of ``tenant``: ``a1``, ``a2``... for tenant ``a``."""
    return [QueueItem(f"{tenant}{i}", "echo", priority, tenant) for i in range(1, n + 1)]


def ids(items: list[QueueItem]) -> list[str]:
    return [i.task_id for i in items]


async def test_tenants_take_turns_one_item_each(coord: Coordination) -> None:
    await coord.queues.enqueue([*of("a", 5), *of("b", 1), *of("c", 2)])
    assert ids(await coord.queues.peek(N, 10)) == ["a1", "b1", "c1", "a2", "c2", "a3", "a4", "a5"]
    assert ids(await coord.queues.peek(N, 4)) == ["a1", "b1", "c1", "a2"]  # a prefix


async def test_a_weight_is_items_per_turn(coord: Coordination) -> None:
    await coord.queues.enqueue([*of("a", 4), *of("b", 6)])
    weights = {"b": 3}
    assert ids(await coord.queues.peek(N, 10, weights)) == [
        "a1", "b1", "b2", "b3", "a2", "b4", "b5", "b6", "a3", "a4"]


async def test_assign_resumes_the_ring_where_the_pass_stopped(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    weights = {"b": 3}
    await coord.queues.enqueue([*of("a", 4), *of("b", 6)])
    first = (await coord.queues.peek(N, 2, weights))
    assert ids(first) == ["a1", "b1"]
    assert await coord.queues.assign(epoch, [(i, "w1") for i in first], weights=weights) == 2
    # b used one item of its turn of three: the next pass goes on with b's turn.
    assert ids(await coord.queues.peek(N, 4, weights)) == ["b2", "b3", "a2", "b4"]


async def test_a_tenant_passed_over_waits_for_its_next_turn(coord: Coordination) -> None:
    """Items the dispatcher held back (a paused type, no worker) are passed over: their
    tenant goes to the back, as if it had had its turn."""
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([*of("a", 3), *of("b", 3)])
    assert await coord.queues.assign(epoch, [(of("b", 1)[0], "w1")]) == 1
    assert ids(await coord.queues.peek(N, 4)) == ["a1", "b2", "a2", "b3"]


async def test_a_single_task_goes_out_in_the_first_pass_behind_a_backlog(
    coord: Coordination,
) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue(of("a", 2_000))
    await coord.queues.enqueue(of("b", 1))
    batch = await coord.queues.peek(N, 10)
    assert "b1" in ids(batch)[:2]
    assert await coord.queues.assign(epoch, [(i, "w1") for i in batch], within=10) == 10
    assert "b1" in ids(await coord.worker_queues.fetch("w1", 10, 0.05))


async def test_an_emptied_tenant_leaves_the_ring_and_rejoins_at_the_back(
    coord: Coordination,
) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([*of("a", 3), *of("b", 1)])
    assert await coord.queues.assign(epoch, [(of("b", 1)[0], "w1")]) == 1
    await coord.queues.enqueue([*of("c", 2), QueueItem("b9", "echo", N, "b")])
    assert ids(await coord.queues.peek(N, 10)) == ["a1", "c1", "b9", "a2", "c2", "a3"]


async def test_priorities_and_tenants_are_apart(coord: Coordination) -> None:
    await coord.queues.enqueue([*of("a", 2, H), *of("a", 1), *of("b", 1, H)])
    assert ids(await coord.queues.peek(H, 10)) == ["a1", "b1", "a2"]
    assert ids(await coord.queues.peek(N, 10)) == ["a1"]
    assert await coord.queues.lengths() == {"high": 3, "normal": 1, "low": 0, "delayed": 0}


async def test_every_path_back_to_a_queue_keeps_the_tenant(coord: Coordination) -> None:
    """Delayed items, handed-back and reaped worker queues return to their tenant's queue;
    remove and tracked find items by tenant."""
    epoch = await leader_epoch(coord)
    await coord.registry.heartbeat(worker("w1"), 30)
    await coord.registry.heartbeat(worker("dead"), -1)
    a, b, c = of("a", 1)[0], of("b", 1)[0], of("c", 1)[0]
    await coord.queues.schedule([(a, time.time() - 1)])
    assert await coord.queues.promote_due(time.time(), 10) == 1
    await coord.queues.enqueue([b, c])
    assert await coord.queues.assign(epoch, [(b, "w1"), (c, "dead")]) == 2
    assert await coord.worker_queues.hand_back("w1") == [b]
    assert (await coord.registry.reap(epoch, "dead")).queued == [c]
    assert await coord.queues.peek(N, 10) == [a, b, c]
    assert await coord.queues.tracked([a, b, c, QueueItem("a1", "echo", N)]) == {"a1", "b1", "c1"}
    await coord.queues.remove([b])
    assert await coord.queues.peek(N, 10) == [a, c]
    assert await coord.queues.lengths() == {"high": 0, "normal": 2, "low": 0, "delayed": 0}


async def test_the_default_tenant_takes_turns_like_any_other(coord: Coordination) -> None:
    plain = [QueueItem(f"d{i}", "echo", N) for i in (1, 2)]
    assert {i.tenant for i in plain} == {DEFAULT_TENANT}
    await coord.queues.enqueue([*plain, *of("a", 2)])
    assert ids(await coord.queues.peek(N, 10, {DEFAULT_TENANT: 2})) == ["d1", "d2", "a1", "a2"]


async def test_redis_queues_from_before_tenants_still_drain(redis_env: RedisSession) -> None:
    """A queue written by the previous version: three-field members in ``queue:normal``, no
    ring. The first peek puts the default tenant in the ring; assign moves the old members."""
    raw, prefix = redis_env.raw, redis_env.prefix
    old = ["t1|echo|1", "t2|echo|1"]
    await raw.rpush(f"{prefix}queue:normal", *old)
    await raw.sadd(f"{prefix}queued", *old)
    coord = await connect_redis(redis_env.url, prefix)
    try:
        await coord.queues.enqueue(of("a", 1))
        assert await coord.queues.lengths() == {"high": 0, "normal": 3, "low": 0, "delayed": 0}
        peeked = await coord.queues.peek(N, 10)
        assert ids(peeked) == ["a1", "t1", "t2"]  # the ring knew a first; default joined after
        assert peeked[1] == QueueItem("t1", "echo", N)
        epoch = await leader_epoch(coord)
        assert await coord.queues.assign(epoch, [(i, "w1") for i in peeked]) == 3
        assert await coord.queues.lengths() == {"high": 0, "normal": 0, "low": 0, "delayed": 0}
        left = {k async for k in raw.scan_iter(match=f"{prefix}*")}
        assert not {k for k in left if ":queue:" in k or ":ring:" in k or k.endswith("queued")}
    finally:
        await coord.close()


async def test_redis_tenant_queues_are_named_under_the_prefix(redis_env: RedisSession) -> None:
    coord = await connect_redis(redis_env.url, redis_env.prefix)
    try:
        await coord.queues.enqueue([*of("acme", 2, H), QueueItem("d1", "echo", H)])
        assert await redis_env.raw.lrange(f"{redis_env.prefix}ring:high", 0, -1) == ["acme", ""]
        assert await redis_env.raw.lrange(f"{redis_env.prefix}queue:high:acme", 0, -1) == [
            "acme1|echo|2|acme", "acme2|echo|2|acme"]
        assert await redis_env.raw.lrange(f"{redis_env.prefix}queue:high", 0, -1) == ["d1|echo|2"]
    finally:
        await coord.close()


async def test_redis_and_in_process_rings_agree_step_by_step(redis_env: RedisSession) -> None:
    """The same random run of enqueues, passes (a peek, then the assign of some of it in peek
    order, as the dispatcher holds some back), removals and promotions on both backends: every
    peek must answer the same, so ``lua/fair.lua`` keeps exactly ``coordination/fair.py``'s
    rules."""
    rng = random.Random(12)
    local = LocalCoordination().as_coordination()
    remote = await connect_redis(redis_env.url, redis_env.prefix)
    both = (local, remote)
    try:
        epochs = [await leader_epoch(c) for c in both]
        weights = {"a": 3, "b": 1, "c": 2, DEFAULT_TENANT: 2}
        made = 0
        for _ in range(300):
            step = rng.random()
            if step < 0.4:
                batch = []
                for _ in range(rng.randrange(1, 6)):
                    made += 1
                    tenant = rng.choice(["a", "b", "c", "d", DEFAULT_TENANT])
                    batch.append(QueueItem(f"t{made}", "echo", rng.choice([H, N]), tenant))
                for c in both:
                    await c.queues.enqueue(batch)
            priority = rng.choice([H, N])
            count = rng.randrange(1, 12)
            seen = [await c.queues.peek(priority, count, weights) for c in both]
            assert seen[0] == seen[1]
            if step >= 0.4 and seen[0]:
                if step < 0.85:
                    moves = [(i, "w1") for i in seen[0] if rng.random() < 0.7]
                    for c, epoch in zip(both, epochs, strict=True):
                        await c.queues.assign(epoch, moves, within=count, weights=weights)
                else:
                    gone = [rng.choice(seen[0])]
                    for c in both:
                        await c.queues.remove(gone)
        assert await local.queues.lengths() == await remote.queues.lengths()
    finally:
        await remote.close()
        await local.close()


async def test_tenant_lengths_count_each_tenant_with_work(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([*of("a", 3), *of("b", 1), *of("a", 2, H),
                                QueueItem("d1", "echo", N)])
    assert await coord.queues.assign(epoch, [(of("b", 1)[0], "w1")]) == 1
    assert await coord.queues.tenant_lengths() == {
        "high": {"a": 2}, "normal": {"a": 3, DEFAULT_TENANT: 1}, "low": {}}
