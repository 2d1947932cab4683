"""The dispatcher's flow control over the in-process backend: pause, concurrency caps, rate
limits, strict and weighted priority. No sleeping: passes are driven with ``run_once``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from conveyor.bootstrap import Components
from conveyor.models import Priority, TaskConfig, WorkerInfo
from conveyor.scheduler import Scheduler
from conveyor.service import TaskRequest


async def _fleet(parts: Components, capacity: int = 100) -> None:
    info = WorkerInfo("w1", "h", 1, capacity)
    await parts.coordination.registry.heartbeat(info, 60)


Dispatch = Callable[[], Awaitable[dict[str, int]]]


@pytest.fixture
def dispatch(parts: Components) -> Dispatch:
    """One dispatch pass of the test's one scheduler (a second would not get the lease)."""
    scheduler = parts.scheduler()
    return lambda: _dispatch(parts, scheduler)


async def _dispatch(parts: Components, scheduler: Scheduler) -> dict[str, int]:
    await scheduler.elector.run_once(time.time())
    await scheduler.dispatcher.run_once(time.time())
    counts: dict[str, int] = {}
    for item in await parts.coordination.worker_queues.fetch("w1", 1000, 0.01):
        counts[item.task_type] = counts.get(item.task_type, 0) + 1
    return counts


async def test_paused_type_and_priority_wait(parts: Components, dispatch: Dispatch) -> None:
    await _fleet(parts)
    await parts.service.submit([TaskRequest("echo"), TaskRequest("noop", priority=Priority.LOW)])
    await parts.coordination.queues.set_paused("echo", True)
    await parts.coordination.queues.set_paused("low", True)
    assert await dispatch() == {}
    await parts.coordination.queues.set_paused("low", False)
    assert await dispatch() == {"noop": 1}


async def test_concurrency_limit_is_fleet_wide(parts: Components, dispatch: Dispatch) -> None:
    await _fleet(parts)
    await parts.service.put_config(TaskConfig("limited", concurrency_limit=3, updated_at=1.0))
    await parts.service.submit([TaskRequest("limited") for _ in range(10)] + [TaskRequest("echo")])
    assert await dispatch() == {"limited": 3, "echo": 1}
    assert await dispatch() == {}  # the three are still in flight


async def test_rate_limit_spends_tokens_only_on_placed_tasks(
    parts: Components, dispatch: Dispatch
) -> None:
    await parts.service.put_config(TaskConfig("rated", rate_limit=5.0, updated_at=1.0))
    await parts.service.submit([TaskRequest("rated") for _ in range(20)])
    assert await dispatch() == {}  # no worker: no token spent
    await _fleet(parts)
    assert await dispatch() == {"rated": 5}


async def test_token_bucket_refills_with_time(parts: Components) -> None:
    queues = parts.coordination.queues
    assert await queues.take_tokens("t", 2.0, 10, 100.0) == 2
    assert await queues.take_tokens("t", 2.0, 10, 100.1) == 0
    assert await queues.take_tokens("t", 2.0, 10, 101.0) == 2


async def test_strict_priority_fills_high_first(parts: Components, dispatch: Dispatch) -> None:
    await _fleet(parts, capacity=2)
    specs = [TaskRequest("echo", {"p": p.label}, priority=p) for p in Priority for _ in range(2)]
    await parts.service.submit(specs)
    assert await dispatch() == {"echo": 2}
    lengths = await parts.coordination.queues.lengths()
    assert (lengths["high"], lengths["normal"], lengths["low"]) == (0, 2, 2)
