"""arq peer: two ``arq`` worker processes with arq's defaults (max_jobs 10, poll_delay 0.5 s).

Worker (started by the bench): ``arq peers.arq_app.WorkerSettings`` twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from peers import _probe

REDIS = RedisSettings.from_dsn(_probe.REDIS_URL)


async def stamp(ctx: dict[str, Any], token: str) -> None:
    await _probe.astamp(token)


async def noop(ctx: dict[str, Any]) -> None:
    await _probe.acount()


async def nap(ctx: dict[str, Any]) -> None:
    await _probe.anap()


class WorkerSettings:
    functions = [stamp, noop, nap]
    redis_settings = REDIS


_pool: ArqRedis | None = None


async def _get_pool() -> ArqRedis:
    global _pool
    if _pool is None:
        _pool = await create_pool(REDIS)
    return _pool


async def asubmit_stamp(token: str) -> None:
    await (await _get_pool()).enqueue_job("stamp", token)


async def asubmit_one() -> None:
    await (await _get_pool()).enqueue_job("noop")


async def aenqueue(kind: str, count: int) -> None:
    pool = await _get_pool()
    for start in range(0, count, 200):
        size = min(200, count - start)
        await asyncio.gather(*(pool.enqueue_job(kind) for _ in range(size)))
