"""``TaskQueues``: priority queues, the delayed set, dispatch, the wake token, pause flags,
in-flight counts and rate-limit tokens.

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.errors import StaleEpoch
from conveyor.models import Priority, QueueItem, WorkerInfo

from .coordination_support import H, L, N, item, leader_epoch, worker


async def test_enqueue_then_peek_keeps_order_per_priority(coord: Coordination) -> None:
    await coord.queues.enqueue([item("a"), item("b"), item("h", H), item("c")])
    assert await coord.queues.peek(N, 2) == [item("a"), item("b")]
    assert await coord.queues.peek(N, 10) == [item("a"), item("b"), item("c")]
    assert await coord.queues.peek(H, 10) == [item("h", H)]
    assert await coord.queues.peek(L, 10) == []
    assert await coord.queues.peek(N, 10) == [item("a"), item("b"), item("c")]  # left in place


async def test_assign_moves_items_into_worker_queues(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([item("a"), item("b"), item("c", H)])
    moves = [(item("a"), "w1"), (item("c", H), "w1"), (item("b"), "w2")]
    assert await coord.queues.assign(epoch, moves) == 3
    assert await coord.queues.peek(N, 10) == []
    assert await coord.queues.peek(H, 10) == []
    assert await coord.worker_queues.fetch("w1", 10, 0.05) == [item("a"), item("c", H)]
    assert await coord.worker_queues.fetch("w2", 10, 0.05) == [item("b")]


async def test_assign_accepts_epoch_zero_before_any_leader(coord: Coordination) -> None:
    await coord.queues.enqueue([item("a")])
    assert await coord.queues.assign(0, [(item("a"), "w1")]) == 1


async def test_assign_with_stale_epoch_raises_and_moves_nothing(coord: Coordination) -> None:
    first = await coord.lease.acquire("scheduler-a", 30)
    assert first is not None
    await coord.lease.release(first)
    second = await coord.lease.acquire("scheduler-b", 30)
    assert second is not None and second.epoch > first.epoch
    await coord.queues.enqueue([item("a"), item("b")])
    with pytest.raises(StaleEpoch):
        await coord.queues.assign(first.epoch, [(item("a"), "w1"), (item("b"), "w1")])
    assert await coord.queues.peek(N, 10) == [item("a"), item("b")]
    assert await coord.worker_queues.fetch("w1", 10, 0.05) == []


async def test_assign_skips_items_removed_meanwhile(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([item("a"), item("b"), item("c")])
    await coord.queues.remove([item("b")])
    moves = [(item("a"), "w1"), (item("b"), "w1"), (item("c"), "w1"), (item("zz"), "w1")]
    assert await coord.queues.assign(epoch, moves) == 2
    assert await coord.worker_queues.fetch("w1", 10, 0.05) == [item("a"), item("c")]


async def test_promote_due_moves_only_due_items_to_their_queue(coord: Coordination) -> None:
    now = time.time()
    await coord.queues.schedule(
        [(item("late", H), now + 100), (item("due-1", H), now - 5), (item("due-2", L), now)]
    )
    assert await coord.queues.promote_due(now, 10) == 2
    assert await coord.queues.peek(H, 10) == [item("due-1", H)]
    assert await coord.queues.peek(L, 10) == [item("due-2", L)]
    assert (await coord.queues.lengths())["delayed"] == 1
    assert await coord.queues.promote_due(now, 10) == 0


async def test_promote_due_respects_limit_earliest_first(coord: Coordination) -> None:
    now = time.time()
    await coord.queues.schedule([(item("b"), now - 2), (item("a"), now - 3), (item("c"), now - 1)])
    assert await coord.queues.promote_due(now, 2) == 2
    assert await coord.queues.peek(N, 10) == [item("a"), item("b")]
    assert await coord.queues.promote_due(now, 2) == 1


async def test_promote_due_moves_a_burst_larger_than_one_transaction(coord: Coordination) -> None:
    """Many retries due at once (etcd: more than one transaction's operations) all move."""
    now = time.time()
    await coord.queues.schedule([(item(f"t{i:03}"), now - 1) for i in range(150)])
    assert await coord.queues.promote_due(now, 1000) == 150
    assert (await coord.queues.lengths())["normal"] == 150


async def test_schedule_again_replaces_due_time(coord: Coordination) -> None:
    now = time.time()
    await coord.queues.schedule([(item("a"), now - 1)])
    await coord.queues.schedule([(item("a"), now + 100)])
    assert await coord.queues.promote_due(now, 10) == 0
    assert (await coord.queues.lengths())["delayed"] == 1


async def test_remove_drops_from_queues_and_delayed(coord: Coordination) -> None:
    now = time.time()
    await coord.queues.enqueue([item("a"), item("b", H)])
    await coord.queues.schedule([(item("d", L), now - 1)])
    await coord.queues.remove([item("a"), item("b", H), item("d", L), item("never")])
    assert await coord.queues.lengths() == {"high": 0, "normal": 0, "low": 0, "delayed": 0}
    assert await coord.queues.promote_due(now, 10) == 0


async def test_lengths_counts_every_queue(coord: Coordination) -> None:
    await coord.queues.enqueue([item("a", H), item("b"), item("c"), item("d", L)])
    await coord.queues.schedule([(item("e"), time.time() + 60)])
    assert await coord.queues.lengths() == {"high": 1, "normal": 2, "low": 1, "delayed": 1}


async def test_held_finds_ids_wherever_they_sit(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.registry.heartbeat(worker("w1"), 30)
    await coord.queues.enqueue([item("queued", H), item("taken"), item("assigned", L)])
    await coord.queues.schedule([(item("delayed"), time.time() + 60)])
    await coord.queues.assign(epoch, [(item("taken"), "w1")])
    assert await coord.worker_queues.fetch("w1", 1, 0.05) == [item("taken")]
    await coord.queues.assign(epoch, [(item("assigned", L), "w1")])
    asked = [item("queued", H), item("delayed"), item("assigned", L), item("taken"),
             item("unknown")]
    assert await coord.queues.tracked(asked) == {"queued", "delayed", "assigned", "taken"}
    assert await coord.queues.tracked([]) == set()
    # Queues and the delayed set hold that very item; under another priority it is not there.
    assert await coord.queues.tracked([item("queued"), item("delayed", H)]) == set()
    await coord.queues.remove([item("queued", H), item("delayed")])
    assert await coord.queues.tracked(asked) == {"assigned", "taken"}


async def test_wait_for_work_wakes_on_enqueue(coord: Coordination) -> None:
    waiter = asyncio.create_task(coord.queues.wait_for_work(5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await coord.queues.enqueue([item("a")])
    await asyncio.wait_for(waiter, 1)
    assert time.monotonic() - started < 0.5


async def test_wait_for_work_returns_after_timeout(coord: Coordination) -> None:
    started = time.monotonic()
    await coord.queues.wait_for_work(0.2)
    assert 0.15 <= time.monotonic() - started < 1.5


async def test_wait_for_work_sees_work_enqueued_before_it_waited(coord: Coordination) -> None:
    await coord.queues.enqueue([item("a")])
    started = time.monotonic()
    await coord.queues.wait_for_work(2)
    assert time.monotonic() - started < 0.5


async def test_paused_names(coord: Coordination) -> None:
    assert await coord.queues.paused() == set()
    await coord.queues.set_paused("high", True)
    await coord.queues.set_paused("mail.send", True)
    assert await coord.queues.paused() == {"high", "mail.send"}
    await coord.queues.set_paused("high", False)
    await coord.queues.set_paused("never-paused", False)
    assert await coord.queues.paused() == {"mail.send"}


async def test_inflight_counts_worker_queues_and_active_lists(coord: Coordination) -> None:
    items = [QueueItem(f"t{i}", "a" if i % 2 else "b", Priority.NORMAL) for i in range(6)]
    theirs = QueueItem("t9", "a", Priority.NORMAL, "acme")  # per tenant: counted apart
    await coord.registry.heartbeat(WorkerInfo("w1", "h", 1, 10), 5)
    await coord.queues.enqueue([*items, theirs])
    lease = await coord.lease.acquire("s", 5)
    assert lease is not None
    await coord.queues.assign(lease.epoch, [(i, "w1") for i in [*items[:4], theirs]])
    await coord.worker_queues.fetch("w1", 2, 0.1)
    assert await coord.queues.inflight() == {
        ("default", "a"): 2, ("default", "b"): 2, ("acme", "a"): 1}


async def test_token_bucket(coord: Coordination) -> None:
    assert await coord.queues.take_tokens("t", 3.0, 10, 1000.0) == 3
    assert await coord.queues.take_tokens("t", 3.0, 10, 1000.0) == 0
    assert await coord.queues.take_tokens("t", 3.0, 1, 1000.5) == 1
    assert await coord.queues.take_tokens("t", 0.5, 5, 2000.0) == 1  # burst of at least one


async def test_items_pinned_to_a_worker_keep_their_pin_and_their_tenant(
    coord: Coordination,
) -> None:
    """A broadcast copy's item carries its worker through every move, and the tenants' turns
    still read its tenant (the Lua parse stops at the worker field)."""
    epoch = await leader_epoch(coord)
    pinned = [QueueItem("p1", "echo", N, worker="w1"),
              QueueItem("p2", "echo", N, tenant="acme", worker="w2")]
    await coord.queues.enqueue(pinned)
    assert sorted(await coord.queues.peek(N, 10), key=lambda i: i.task_id) == pinned
    assert (await coord.queues.tenant_lengths())["normal"] == {"default": 1, "acme": 1}
    assert await coord.queues.assign(epoch, [(pinned[0], "w1"), (pinned[1], "w2")]) == 2
    assert await coord.worker_queues.fetch("w2", 10, 0.05) == [pinned[1]]
    await coord.queues.enqueue([QueueItem("p3", "echo", N, worker="w3")])
    await coord.queues.remove([QueueItem("p3", "echo", N, worker="w3")])
    assert await coord.queues.peek(N, 10) == []
