"""Held-back work never blocks work that may run (issue 10, finding 8).

Three ``echo`` tasks queued behind 200 held-back tasks of another type (paused, at its
concurrency cap, out of rate tokens) are dispatched on the first pass, on the in-process and
the Redis coordination backends. Passes are driven with ``run_once``; nothing sleeps.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conveyor.bootstrap import Components, build
from conveyor.config import load_settings
from conveyor.models import TaskConfig, WorkerInfo
from conveyor.service import TaskRequest

REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HELD_BACK = 200


@pytest.fixture(params=["local", "redis"])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Components]:
    prefix = f"cvlp{uuid.uuid4().hex[:10]}:"
    redis_url = REDIS_URL if request.param == "redis" else None
    settings = load_settings(
        database_url=str(tmp_path / "c.db"), redis_url=redis_url, redis_prefix=prefix
    )
    built = await build(settings, standalone=True)
    await built.store.migrate()
    try:
        yield built
    finally:
        await built.close()
        if redis_url:
            raw = aioredis.Redis.from_url(redis_url)
            keys = [k async for k in raw.scan_iter(f"{prefix}*")]
            if keys:
                await raw.delete(*keys)
            await raw.aclose()


async def dispatch_once(parts: Components, capacity: int = 10) -> dict[str, int]:
    """One pass of one scheduler to one idle worker; what the worker got, by type."""
    await parts.coordination.registry.heartbeat(WorkerInfo("w1", "h", 1, capacity), 60)
    scheduler = parts.scheduler()
    await scheduler.elector.run_once(time.time())
    await scheduler.dispatcher.run_once(time.time())
    counts: dict[str, int] = {}
    for item in await parts.coordination.worker_queues.fetch("w1", 1000, 0.01):
        counts[item.task_type] = counts.get(item.task_type, 0) + 1
    return counts


async def submit_behind(parts: Components, held: str) -> None:
    await parts.service.submit([TaskRequest(held) for _ in range(HELD_BACK)])
    await parts.service.submit([TaskRequest("echo") for _ in range(3)])


async def test_paused_type_does_not_block_the_types_behind(parts: Components) -> None:
    await parts.coordination.queues.set_paused("sleep", True)
    await submit_behind(parts, "sleep")
    assert await dispatch_once(parts) == {"echo": 3}


async def test_type_at_its_concurrency_cap_does_not_block(parts: Components) -> None:
    await parts.service.put_config(TaskConfig("capped", concurrency_limit=2, updated_at=1.0))
    await submit_behind(parts, "capped")
    assert await dispatch_once(parts) == {"capped": 2, "echo": 3}


async def test_rate_limited_type_does_not_block(parts: Components) -> None:
    await parts.service.put_config(TaskConfig("rated", rate_limit=2.0, updated_at=1.0))
    await submit_behind(parts, "rated")
    assert await dispatch_once(parts) == {"rated": 2, "echo": 3}


async def test_the_look_past_window_is_bounded(parts: Components) -> None:
    """Runnable work further behind than the window waits: one pass reads a bounded window."""
    capacity = 10
    far = capacity + parts.settings.scheduler.look_past
    await parts.coordination.queues.set_paused("sleep", True)
    for start in range(0, far, 500):
        await parts.service.submit([TaskRequest("sleep") for _ in range(min(500, far - start))])
    await parts.service.submit([TaskRequest("echo")])
    assert await dispatch_once(parts, capacity) == {}
