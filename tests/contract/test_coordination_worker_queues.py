"""``WorkerQueues``: a worker's queue and active list.

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import asyncio
import time

from conveyor.coordination.protocol import Coordination
from conveyor.models import Priority, QueueItem

from .coordination_support import H, N, item, leader_epoch, worker


async def test_fetch_blocks_until_an_assign(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    fetcher = asyncio.create_task(coord.worker_queues.fetch("w1", 10, 5))
    await asyncio.sleep(0.1)
    assert not fetcher.done()
    await coord.queues.enqueue([item("a"), item("b")])
    started = time.monotonic()
    await coord.queues.assign(epoch, [(item("a"), "w1"), (item("b"), "w1")])
    taken = await asyncio.wait_for(fetcher, 1)
    assert time.monotonic() - started < 0.5
    assert taken[0] == item("a")
    assert set(taken) <= {item("a"), item("b")}


async def test_fetch_returns_nothing_after_timeout(coord: Coordination) -> None:
    started = time.monotonic()
    assert await coord.worker_queues.fetch("w1", 5, 0.2) == []
    assert 0.15 <= time.monotonic() - started < 1.5


async def test_fetch_takes_at_most_count(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([item("a"), item("b"), item("c")])
    await coord.queues.assign(epoch, [(item(t), "w1") for t in "abc"])
    assert await coord.worker_queues.fetch("w1", 2, 0.05) == [item("a"), item("b")]
    assert await coord.worker_queues.fetch("w1", 2, 0.05) == [item("c")]


async def test_ack_drops_from_active(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.registry.heartbeat(worker("w1"), 30)
    await coord.queues.enqueue([item("a"), item("b")])
    await coord.queues.assign(epoch, [(item("a"), "w1"), (item("b"), "w1")])
    await coord.worker_queues.fetch("w1", 2, 0.05)
    await coord.worker_queues.ack("w1", [item("a")])
    assert await coord.queues.tracked([item("a"), item("b")]) == {"b"}
    [live] = await coord.registry.live_workers()
    assert live.load == 1


async def test_hand_back_returns_untaken_items_to_their_queues(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([item("a"), item("b", H), item("c")])
    await coord.queues.assign(epoch, [(item(t), "w1") for t in "ac"] + [(item("b", H), "w1")])
    assert await coord.worker_queues.fetch("w1", 1, 0.05) == [item("a")]
    assert await coord.worker_queues.hand_back("w1") == [item("c"), item("b", H)]
    assert await coord.queues.peek(N, 10) == [item("c")]
    assert await coord.queues.peek(H, 10) == [item("b", H)]
    assert await coord.worker_queues.fetch("w1", 5, 0.05) == []
    assert await coord.worker_queues.hand_back("w1") == []


async def test_hand_back_wakes_the_dispatcher(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([item("a")])
    await coord.queues.assign(epoch, [(item("a"), "w1")])
    await coord.queues.wait_for_work(0.01)  # consume the enqueue's wake-up
    await coord.worker_queues.hand_back("w1")
    started = time.monotonic()
    await coord.queues.wait_for_work(2)
    assert time.monotonic() - started < 0.5


async def test_ack_wakes_the_dispatcher_while_work_is_queued(coord: Coordination) -> None:
    """Capacity freed while ids wait in the queues is a reason for a pass."""
    epoch = await leader_epoch(coord)
    await coord.queues.enqueue([item("a"), item("b")])
    await coord.queues.assign(epoch, [(item("a"), "w1")])
    await coord.worker_queues.fetch("w1", 1, 0.05)
    await coord.queues.wait_for_work(0.01)  # consume the enqueue's wake-up
    await coord.worker_queues.ack("w1", [item("a")])
    started = time.monotonic()
    await coord.queues.wait_for_work(2)
    assert time.monotonic() - started < 0.5


async def test_active_lists_what_was_fetched(coord: Coordination) -> None:
    items = [QueueItem(f"a{i}", "echo", Priority.NORMAL) for i in range(3)]
    await coord.queues.enqueue(items)
    lease = await coord.lease.acquire("s", 5)
    assert lease is not None
    await coord.queues.assign(lease.epoch, [(i, "w1") for i in items])
    fetched = await coord.worker_queues.fetch("w1", 2, 0.1)
    assert await coord.worker_queues.active("w1") == fetched
    await coord.worker_queues.ack("w1", fetched[:1])
    assert await coord.worker_queues.active("w1") == fetched[1:]
