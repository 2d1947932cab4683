"""Redis only: connecting, URLs, scripts, key prefixes and surviving a lost connection.

These run on the Redis backend alone (the ``redis_env`` fixture), each with its own prefix.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from conveyor.coordination.redis import connect_redis
from conveyor.coordination.redis.connection import parse_sentinel_url, redact
from conveyor.errors import BackendUnavailable, ConfigError
from conveyor.models import Lease

from .coordination_support import H, item, leader_epoch, worker

if TYPE_CHECKING:
    from .conftest import RedisSession


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
        expected = {"queue:high", "ring:high", "queued", "wake", "worker:w1", "workers"}
        assert keys == {redis_env.prefix + k for k in expected}
    finally:
        await coord.close()


async def test_an_ack_with_nothing_queued_leaves_no_wake_token(redis_env: RedisSession) -> None:
    """Nothing waits to be placed, so freed capacity is no reason for a dispatch pass (the
    next enqueue leaves its own token); with an id queued the ack leaves one."""
    coord = await connect_redis(redis_env.url, redis_env.prefix)
    wake = f"{redis_env.prefix}wake"
    try:
        await coord.queues.enqueue([item("a")])
        await coord.queues.assign(await leader_epoch(coord), [(item("a"), "w1")])
        await coord.worker_queues.fetch("w1", 1, 0.05)
        await redis_env.raw.delete(wake)
        await coord.worker_queues.ack("w1", [item("a")])
        assert await redis_env.raw.llen(wake) == 0
        await coord.queues.enqueue([item("b")])
        await redis_env.raw.delete(wake)
        await coord.worker_queues.ack("w1", [item("a")])
        assert await redis_env.raw.llen(wake) == 1
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


async def test_a_worker_whose_connections_closed_is_disconnected(redis_env: RedisSession) -> None:
    """The registry records the name a worker's connections carry; once none is connected
    under it (the process died), ``disconnected`` says so. Unnamed workers are never reported."""
    scheduler = await connect_redis(redis_env.url, redis_env.prefix, client_name="sched-x")
    doomed = await connect_redis(redis_env.url, redis_env.prefix,
                                 client_name=f"{redis_env.client_name}-w1")
    unnamed = await connect_redis(redis_env.url, redis_env.prefix)
    try:
        await doomed.registry.heartbeat(worker("w1"), 30)
        await unnamed.registry.heartbeat(worker("w2"), 30)
        assert await scheduler.registry.disconnected(["w1", "w2", "never"]) == set()
        await doomed.close()
        assert await scheduler.registry.disconnected(["w1", "w2", "never"]) == {"w1"}
        assert await scheduler.registry.disconnected([]) == set()
    finally:
        await scheduler.close()
        await unnamed.close()
