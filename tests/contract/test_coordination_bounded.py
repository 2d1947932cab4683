"""Redis only: script costs do not grow with what is stored (issue 10, finding 11).

The orphan sweep's ``tracked`` scanned every priority queue and the whole delayed set on each
call: with 300,000 delayed tasks it took 60.8 s of Redis time in 75 s. It now answers from
the ``queued`` index and the delayed set, one lookup per item asked about. ``assign`` of an
item gone from its queue scanned the whole queue; it now looks only as deep as the dispatcher
peeked. The cost tests run on a private ``redis-server`` so that ``INFO commandstats`` counts
their own calls only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis

from conveyor.coordination.protocol import Coordination
from conveyor.coordination.redis import connect_redis
from conveyor.models import Priority, QueueItem
from tests.distributed.harness import redis_server

from .coordination_support import H, L, item, leader_epoch, worker

if TYPE_CHECKING:
    from .conftest import RedisSession

ASKED = 500


async def _index_matches_the_queues(raw: aioredis.Redis, prefix: str) -> None:
    queued: set[str] = set()
    async for key in raw.scan_iter(match=f"{prefix}queue:*"):  # every tenant's queues
        queued |= {str(m) for m in await raw.lrange(key, 0, -1)}
    assert {str(m) for m in await raw.smembers(f"{prefix}queued")} == queued


async def test_the_queued_index_follows_every_move(redis_env: RedisSession) -> None:
    coord = await connect_redis(redis_env.url, redis_env.prefix)
    raw, prefix = redis_env.raw, redis_env.prefix
    try:
        epoch = await leader_epoch(coord)
        await coord.registry.heartbeat(worker("w1"), 30)
        await coord.registry.heartbeat(worker("dead"), -1)
        await coord.queues.enqueue([item("a"), item("b", H), item("c", L), item("d")])
        await coord.queues.enqueue([QueueItem("t", "echo", H, "acme")])
        await coord.queues.schedule([(item("e"), time.time() - 1)])
        await _index_matches_the_queues(raw, prefix)
        assert await coord.queues.promote_due(time.time(), 10) == 1
        await _index_matches_the_queues(raw, prefix)
        await coord.queues.assign(epoch, [(item("a"), "w1"), (item("b", H), "dead")])
        await _index_matches_the_queues(raw, prefix)
        await coord.queues.remove([item("c", L)])
        await _index_matches_the_queues(raw, prefix)
        assert await coord.worker_queues.hand_back("w1") == [item("a")]
        await _index_matches_the_queues(raw, prefix)
        reaped = await coord.registry.reap(epoch, "dead")
        assert reaped.queued == [item("b", H)]
        await _index_matches_the_queues(raw, prefix)
        expected = {"a", "b", "d", "e"}
        assert await coord.queues.tracked([item(t) for t in "ade"] + [item("b", H)]) == expected
    finally:
        await coord.close()


Call = Callable[[Coordination], Awaitable[None]]


async def _script_usec(url: str, stored: int, fill: Call, call: Call) -> float:
    """Redis time (µs) of one ``call`` (a script) after ``fill`` stored ``stored`` items under
    a fresh prefix; the first call loads the script and is not counted."""
    raw = aioredis.Redis.from_url(url, decode_responses=True)
    coord = await connect_redis(url, f"cost{stored}:")
    try:
        await fill(coord)
        await call(coord)
        await raw.config_resetstat()
        calls = 5
        for _ in range(calls):
            await call(coord)
        stats = await raw.info("commandstats")
        return float(stats["cmdstat_evalsha"]["usec"]) / calls
    finally:
        await coord.close()
        await raw.aclose()


async def _store(coord: Coordination, stored: int, *, delayed: bool) -> None:
    """``stored`` queued items (``q0``...), and as many delayed ones (``d0``...) if asked."""
    later = time.time() + 3600
    for start in range(0, stored, 10_000):
        batch = range(start, min(stored, start + 10_000))
        await coord.queues.enqueue([item(f"q{n}") for n in batch])
        if delayed:
            await coord.queues.schedule([(item(f"d{n}"), later) for n in batch])


async def _tracked_usec(url: str, stored: int) -> float:
    """One ``tracked`` call of ASKED items over ``stored`` delayed and as many queued items;
    half the items asked about are stored, half are not."""
    asked = [item(f"d{n}") for n in range(0, stored, stored // (ASKED // 2))]
    asked += [QueueItem(f"x{n}", "echo", Priority.NORMAL) for n in range(ASKED - len(asked))]

    async def call(coord: Coordination) -> None:
        assert len(await coord.queues.tracked(asked)) == ASKED // 2

    return await _script_usec(
        url, stored, lambda coord: _store(coord, stored, delayed=True), call)


async def test_assign_looks_for_an_item_only_as_deep_as_it_was_peeked(
    redis_env: RedisSession,
) -> None:
    coord = await connect_redis(redis_env.url, redis_env.prefix)
    try:
        epoch = await leader_epoch(coord)
        await coord.queues.enqueue([item("a"), item("b"), item("c")])
        assert await coord.queues.assign(epoch, [(item("c"), "w1")], within=2) == 0
        assert await coord.queues.assign(epoch, [(item("b"), "w1")], within=2) == 1
        assert await coord.queues.assign(epoch, [(item("c"), "w1")], within=2) == 1
        assert await coord.queues.assign(epoch, [(item("a"), "w1")]) == 1
        assert await coord.queues.lengths() == {"high": 0, "normal": 0, "low": 0, "delayed": 0}
    finally:
        await coord.close()


async def _assign_gone_usec(url: str, stored: int) -> float:
    """One ``assign`` of 50 items no longer queued, over ``stored`` queued items."""
    gone = [(item(f"gone{n}"), "w1") for n in range(50)]
    epochs: list[int] = []

    async def fill(coord: Coordination) -> None:
        await _store(coord, stored, delayed=False)
        epochs.append(await leader_epoch(coord))

    async def call(coord: Coordination) -> None:
        assert await coord.queues.assign(epochs[0], gone, within=1_500) == 0

    return await _script_usec(url, stored, fill, call)


@pytest.mark.parametrize(("measure", "what"), [
    (_tracked_usec, f"tracked of {ASKED} items, half of them stored"),
    (_assign_gone_usec, "assign of 50 items gone from the queue"),
])
async def test_script_cost_does_not_grow_from_1000_to_100000_stored(
    tmp_path: Path, measure: Callable[[str, int], Awaitable[float]], what: str
) -> None:
    with redis_server(tmp_path) as server:
        small = await measure(server.url, 1_000)
        large = await measure(server.url, 100_000)
    print(f"\n{what}, Redis time: {small:.0f} µs over 1,000 stored, {large:.0f} µs over 100,000")
    assert large < 4 * small + 2_000, (small, large)
