"""Held-back work never blocks work that may run (issue 10, finding 8).

Three ``echo`` tasks queued behind 200 held-back tasks of another type (paused, at its
concurrency cap, out of rate tokens) are dispatched on the first pass, on the in-process and
the Redis coordination backends. Passes are driven with ``run_once``; nothing sleeps.
"""

from __future__ import annotations

import time
from collections import Counter

from conveyor.bootstrap import Components
from conveyor.models import TaskConfig, WorkerInfo
from conveyor.service import TaskRequest

HELD_BACK = 200


async def dispatch_once(both: Components, capacity: int = 10) -> Counter[str]:
    """One pass of one scheduler to one idle worker; what the worker got, by type."""
    await both.coordination.registry.heartbeat(WorkerInfo("w1", "h", 1, capacity), 60)
    scheduler = both.scheduler()
    for duty in (scheduler.elector, scheduler.dispatcher):
        await duty.run_once(time.time())
    fetched = await both.coordination.worker_queues.fetch("w1", 1000, 0.01)
    return Counter(item.task_type for item in fetched)


async def submit_behind(both: Components, held: str) -> None:
    await both.service.submit([TaskRequest(held) for _ in range(HELD_BACK)])
    await both.service.submit([TaskRequest("echo") for _ in range(3)])


async def test_paused_type_does_not_block_the_types_behind(both: Components) -> None:
    await both.coordination.queues.set_paused("sleep", True)
    await submit_behind(both, "sleep")
    assert await dispatch_once(both) == {"echo": 3}


async def test_type_at_its_concurrency_cap_does_not_block(both: Components) -> None:
    await both.service.put_config(TaskConfig("capped", concurrency_limit=2, updated_at=1.0))
    await submit_behind(both, "capped")
    assert await dispatch_once(both) == {"capped": 2, "echo": 3}


async def test_rate_limited_type_does_not_block(both: Components) -> None:
    await both.service.put_config(TaskConfig("rated", rate_limit=2.0, updated_at=1.0))
    await submit_behind(both, "rated")
    assert await dispatch_once(both) == {"rated": 2, "echo": 3}


async def test_the_look_past_window_is_bounded(both: Components) -> None:
    """Runnable work further behind than the window waits: one pass reads a bounded window."""
    capacity = 10
    far = capacity + both.settings.scheduler.look_past
    await both.coordination.queues.set_paused("sleep", True)
    for start in range(0, far, 500):
        await both.service.submit([TaskRequest("sleep") for _ in range(min(500, far - start))])
    await both.service.submit([TaskRequest("echo")])
    assert await dispatch_once(both, capacity) == {}
