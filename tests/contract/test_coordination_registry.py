"""``Registry``: heartbeats, liveness, reaping and deregistration.

See ``coordination_support`` for how the contract runs over both backends.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.errors import StaleEpoch

from .coordination_support import H, item, leader_epoch, worker


async def test_heartbeat_lists_live_workers_with_load(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    info = worker("w1", draining=True)
    await coord.registry.heartbeat(info, 30)
    await coord.registry.heartbeat(worker("w2", types=()), 30)
    await coord.queues.enqueue([item("a"), item("b"), item("c")])
    await coord.queues.assign(epoch, [(item("a"), "w1"), (item("b"), "w1"), (item("c"), "w2")])
    await coord.worker_queues.fetch("w1", 1, 0.05)
    live = {w.worker_id: w for w in await coord.registry.live_workers()}
    assert live["w1"] == worker("w1", draining=True, load=2)
    assert live["w2"] == worker("w2", types=(), load=1)
    assert await coord.registry.expired_workers(time.time()) == []


async def test_every_read_of_the_live_workers_sees_the_latest_beat_and_load(
    coord: Coordination,
) -> None:
    """The dispatcher reads the fleet on every pass: a beat that changed what a worker
    advertises, and a load that changed, show in the next read."""
    epoch = await leader_epoch(coord)
    await coord.registry.heartbeat(worker("w1"), 30)
    assert await coord.registry.live_workers() == [worker("w1")]
    await coord.queues.enqueue([item("a")])
    await coord.queues.assign(epoch, [(item("a"), "w1")])
    assert await coord.registry.live_workers() == [worker("w1", load=1)]
    await coord.registry.heartbeat(worker("w1", draining=True, last_heartbeat=1011.5), 30)
    assert await coord.registry.live_workers() == [
        worker("w1", draining=True, last_heartbeat=1011.5, load=1)
    ]
    await coord.worker_queues.fetch("w1", 1, 0.05)
    await coord.worker_queues.ack("w1", [item("a")])
    await coord.registry.heartbeat(worker("w2"), 30)
    live = sorted(await coord.registry.live_workers(), key=lambda w: w.worker_id)
    assert live == [worker("w1", draining=True, last_heartbeat=1011.5), worker("w2")]


async def test_lapsed_heartbeat_expires_and_reap_recovers_items(coord: Coordination) -> None:
    epoch = await leader_epoch(coord)
    await coord.registry.heartbeat(worker("alive"), 30)
    await coord.registry.heartbeat(worker("dead"), 0.2)
    await coord.queues.enqueue([item("a"), item("b", H), item("c")])
    await coord.queues.assign(epoch, [(item("a"), "dead"), (item("b", H), "dead")])
    await coord.worker_queues.fetch("dead", 1, 0.05)
    await asyncio.sleep(0.3)
    assert [w.worker_id for w in await coord.registry.live_workers()] == ["alive"]
    assert await coord.registry.expired_workers(time.time()) == ["dead"]

    with pytest.raises(StaleEpoch):
        await coord.registry.reap(epoch - 1, "dead")
    assert await coord.registry.expired_workers(time.time()) == ["dead"]

    reaped = await coord.registry.reap(epoch, "dead")
    assert reaped.worker_id == "dead"
    assert reaped.queued == [item("b", H)]
    assert reaped.active == [item("a")]
    assert await coord.queues.peek(H, 10) == [item("b", H)]
    assert await coord.registry.expired_workers(time.time()) == []
    assert await coord.queues.tracked([item("a"), item("b", H)]) == {"b"}


async def test_deregister_forgets_the_worker(coord: Coordination) -> None:
    await coord.registry.heartbeat(worker("w1"), 30)
    await coord.registry.deregister("w1")
    assert await coord.registry.live_workers() == []
    assert await coord.registry.expired_workers(time.time() + 60) == []


async def test_a_joining_worker_wakes_the_dispatcher_and_a_beat_does_not(
    coord: Coordination,
) -> None:
    """Work queued before any worker was live is placed the moment one registers: its first
    heartbeat wakes ``wait_for_work`` (long before the 30 s scan). Later beats of a live
    worker leave no token, so they cost the dispatcher no pass."""
    await coord.queues.wait_for_work(0.01)  # no token left from the setup
    waiter = asyncio.create_task(coord.queues.wait_for_work(30))
    await asyncio.sleep(0.05)
    await coord.registry.heartbeat(worker("w1"), 30)
    await asyncio.wait_for(waiter, 10)

    await coord.registry.heartbeat(worker("w1"), 30)
    started = time.monotonic()
    await coord.queues.wait_for_work(0.3)
    assert time.monotonic() - started >= 0.25  # it waited: the second beat woke nothing


async def test_a_drain_request_names_one_worker_process_until_it_deregisters(
    coord: Coordination,
) -> None:
    registry = coord.registry
    assert await registry.drain_requested("w1") is None
    await registry.heartbeat(worker("w1"), 30)
    await registry.request_drain("w1", 1234.5678901, 60)
    assert await registry.drain_requested("w1") == 1234.5678901  # exactly: compared as is
    assert await registry.drain_requested("w2") is None
    await registry.deregister("w1")
    assert await registry.drain_requested("w1") is None  # a clean exit takes the request along
