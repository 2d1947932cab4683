"""The coordination contract (protocol.py), run against the in-process and the Redis backend.

``local.py`` is the reference: every test here must pass on both. Timings use short TTLs and
real sleeps only where a TTL has to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import pytest

from conveyor.coordination.protocol import Coordination
from conveyor.coordination.redis import connect_redis
from conveyor.coordination.redis.connection import parse_sentinel_url, redact
from conveyor.errors import BackendUnavailable, ConfigError, StaleEpoch
from conveyor.models import Lease, Priority, QueueItem, WorkerInfo

if TYPE_CHECKING:
    from .conftest import RedisSession

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


# -- TaskQueues -------------------------------------------------------------------------------


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
    asked = ["queued", "delayed", "assigned", "taken", "unknown"]
    assert await coord.queues.tracked(asked) == {"queued", "delayed", "assigned", "taken"}
    assert await coord.queues.tracked([]) == set()


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


# -- WorkerQueues -----------------------------------------------------------------------------


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
    assert await coord.queues.tracked(["a", "b"]) == {"b"}
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


# -- Registry ---------------------------------------------------------------------------------


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
    assert await coord.queues.tracked(["a", "b"]) == {"b"}


async def test_deregister_forgets_the_worker(coord: Coordination) -> None:
    await coord.registry.heartbeat(worker("w1"), 30)
    await coord.registry.deregister("w1")
    assert await coord.registry.live_workers() == []
    assert await coord.registry.expired_workers(time.time() + 60) == []


# -- LeaderLease ------------------------------------------------------------------------------


async def test_lease_acquire_renew_release_with_rising_epoch(coord: Coordination) -> None:
    first = await coord.lease.acquire("a", 5)
    assert first == Lease("a", 1)
    assert await coord.lease.acquire("b", 5) is None
    assert await coord.lease.current() == first
    assert await coord.lease.renew(first, 5)
    assert not await coord.lease.renew(Lease("b", 1), 5)
    await coord.lease.release(Lease("b", 1))
    assert await coord.lease.current() == first
    await coord.lease.release(first)
    assert await coord.lease.current() is None
    assert not await coord.lease.renew(first, 5)
    second = await coord.lease.acquire("b", 5)
    assert second == Lease("b", 2)


async def test_acquire_starts_above_the_epoch_floor(coord: Coordination) -> None:
    lease = await coord.lease.acquire("a", 5, min_epoch=41)
    assert lease == Lease("a", 42)
    await coord.lease.release(lease)
    assert await coord.lease.acquire("b", 5) == Lease("b", 43)


async def test_leader_status_is_published_and_expires(coord: Coordination) -> None:
    assert await coord.lease.status() == {}
    await coord.lease.publish_status({"dispatcher": 1.5, "promoter": 2.25}, 0.3)
    assert await coord.lease.status() == {"dispatcher": 1.5, "promoter": 2.25}
    await coord.lease.publish_status({"dispatcher": 3.0}, 0.3)
    assert await coord.lease.status() == {"dispatcher": 3.0}
    await asyncio.sleep(0.4)
    assert await coord.lease.status() == {}


async def test_inflight_counts_worker_queues_and_active_lists(coord: Coordination) -> None:
    items = [QueueItem(f"t{i}", "a" if i % 2 else "b", Priority.NORMAL) for i in range(6)]
    await coord.registry.heartbeat(WorkerInfo("w1", "h", 1, 10), 5)
    await coord.queues.enqueue(items)
    lease = await coord.lease.acquire("s", 5)
    assert lease is not None
    await coord.queues.assign(lease.epoch, [(i, "w1") for i in items[:4]])
    await coord.worker_queues.fetch("w1", 2, 0.1)
    assert await coord.queues.inflight() == {"a": 2, "b": 2}


async def test_token_bucket(coord: Coordination) -> None:
    assert await coord.queues.take_tokens("t", 3.0, 10, 1000.0) == 3
    assert await coord.queues.take_tokens("t", 3.0, 10, 1000.0) == 0
    assert await coord.queues.take_tokens("t", 3.0, 1, 1000.5) == 1
    assert await coord.queues.take_tokens("t", 0.5, 5, 2000.0) == 1  # burst of at least one


async def test_lease_expires_and_the_next_holder_gets_a_higher_epoch(coord: Coordination) -> None:
    first = await coord.lease.acquire("a", 0.2)
    assert first is not None
    assert await coord.lease.renew(first, 0.3)
    await asyncio.sleep(0.2)
    assert await coord.lease.current() == first  # the renewal pushed expiry out
    await asyncio.sleep(0.2)
    assert await coord.lease.current() is None
    assert not await coord.lease.renew(first, 5)
    second = await coord.lease.acquire("b", 5)
    assert second is not None and second.epoch == first.epoch + 1


async def test_holder_names_may_contain_the_separator(coord: Coordination) -> None:
    lease = await coord.lease.acquire("host|1234|x", 5)
    assert lease is not None
    assert await coord.lease.current() == lease


# -- CancelSignals ----------------------------------------------------------------------------


async def test_cancel_flags_with_ttl(coord: Coordination) -> None:
    await coord.cancels.request("t1", 5)
    await coord.cancels.request("t2", 0.1)
    assert await coord.cancels.requested(["t1", "t2", "t3"]) == {"t1", "t2"}
    await asyncio.sleep(0.2)
    assert await coord.cancels.requested(["t1", "t2", "t3"]) == {"t1"}
    assert await coord.cancels.requested([]) == set()


async def test_listen_receives_published_cancels(coord: Coordination) -> None:
    stream = coord.cancels.listen()
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        first = asyncio.ensure_future(anext(stream))
        # The subscription starts on first iteration; repeat until it is certainly live.
        for _ in range(20):
            await coord.cancels.request("t1", 5)
            done, _ = await asyncio.wait({first}, timeout=0.1)
            if done:
                break
        assert first.result() == "t1"
        await coord.cancels.request("t2", 5)
        assert await asyncio.wait_for(anext(stream), 1) in {"t1", "t2"}


# -- Redis only -------------------------------------------------------------------------------


async def test_scripts_survive_a_flushed_script_cache(redis_env: RedisSession) -> None:
    coord = await connect_redis(redis_env.url, redis_env.prefix)
    try:
        await coord.queues.enqueue([item("a"), item("b")])
        epoch = await leader_epoch(coord)
        assert await coord.queues.assign(epoch, [(item("a"), "w1")]) == 1
        await redis_env.raw.script_flush()
        assert await coord.queues.assign(epoch, [(item("b"), "w1")]) == 1
        assert await coord.worker_queues.fetch("w1", 5, 0.1) == [item("a"), item("b")]
        assert await coord.lease.renew(Lease("scheduler-a", epoch), 5)
    finally:
        await coord.close()


async def test_keys_live_under_the_prefix(redis_env: RedisSession) -> None:
    coord = await connect_redis(redis_env.url, redis_env.prefix)
    try:
        await coord.queues.enqueue([item("a", H)])
        await coord.registry.heartbeat(worker("w1"), 30)
        keys = {k async for k in redis_env.raw.scan_iter(match=f"{redis_env.prefix}*")}
        expected = {"queue:high", "wake", "worker:w1", "workers"}
        assert keys == {redis_env.prefix + k for k in expected}
    finally:
        await coord.close()


async def test_blocked_fetch_survives_a_killed_connection(redis_env: RedisSession) -> None:
    coord = await connect_redis(redis_env.url, redis_env.prefix, client_name=redis_env.client_name)
    try:
        fetcher = asyncio.create_task(coord.worker_queues.fetch("w1", 5, 5))
        await asyncio.sleep(0.1)
        killed = await kill_named(redis_env)
        assert killed >= 1
        await coord.queues.enqueue([item("a")])
        await coord.queues.assign(0, [(item("a"), "w1")])
        assert await asyncio.wait_for(fetcher, 4) == [item("a")]
    finally:
        await coord.close()


async def kill_named(session: RedisSession) -> int:
    """Kill this test's own connections only: the Redis may be shared with other suites."""
    clients = await session.raw.client_list()
    ids = [c["id"] for c in clients if c.get("name") == session.client_name]
    for client_id in ids:
        await session.raw.client_kill_filter(_id=client_id)
    return len(ids)


async def test_connect_to_nothing_raises_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        await connect_redis("redis://127.0.0.1:1/0", "x:", retries=0)


def test_sentinel_url_parsing() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://:s3cret@s1:26380,s2,[::1]:26381/mymaster/3?sentinel_password=sp"
    )
    assert parsed.hosts == [("s1", 26380), ("s2", 26379), ("::1", 26381)]
    assert parsed.service == "mymaster"
    assert parsed.db == 3
    assert parsed.username is None and parsed.password == "s3cret"
    assert parsed.sentinel_password == "sp"
    with pytest.raises(ConfigError):
        parse_sentinel_url("redis+sentinel://s1:26379")
    assert redact("redis://u:pw@h:6379/0") == "redis://u:***@h:6379/0"


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
