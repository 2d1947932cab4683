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
    _probe.stamp(token)


async def noop(ctx: dict[str, Any]) -> None:
    _probe.tick()


class WorkerSettings:
    functions = [stamp, noop]
    redis_settings = REDIS


_runner: asyncio.Runner | None = None
_pool: ArqRedis | None = None


def _run(coro: Any) -> Any:
    global _runner
    if _runner is None:
        _runner = asyncio.Runner()
    return _runner.run(coro)


async def _get_pool() -> ArqRedis:
    global _pool
    if _pool is None:
        _pool = await create_pool(REDIS)
    return _pool


def submit_stamp(token: str) -> None:
    async def go() -> None:
        await (await _get_pool()).enqueue_job("stamp", token)

    _run(go())


def enqueue_noops(count: int) -> None:
    async def go() -> None:
        pool = await _get_pool()
        for start in range(0, count, 200):
            size = min(200, count - start)
            await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(size)))

    _run(go())
