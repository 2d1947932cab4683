"""A cancel that races an attempt's start ends the attempt and frees its slot, always
(issue 10, finding 8: 3 of 12 tasks stayed PROCESSING, holding slots, after such a race).

The worker and the scheduler run for real (in-process or over Redis); cancels are sent through
the service as the API sends them, at random moments around the start.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from conveyor.bootstrap import Components
from conveyor.models import TaskStatus
from conveyor.service import TaskRequest
from conveyor.worker import Worker
from conveyor.worker.processor import StopReason

LONG = {"seconds": 3600}
ROUNDS = 15


async def cancel_soon(parts: Components, task_id: str, delay: float) -> None:
    await asyncio.sleep(delay)
    await parts.service.cancel(task_id)


async def dispatched_sleep(parts: Components) -> tuple[Worker, str]:
    """A registered worker with one long ``sleep`` task in its queue, not yet fetched."""
    worker = parts.worker()
    await worker.heartbeat.run_once(time.time())
    [created] = await parts.service.submit([TaskRequest("sleep", LONG)])
    scheduler = parts.scheduler()
    await scheduler.elector.run_once(time.time())
    await scheduler.dispatcher.run_once(time.time())
    parts.catalog.invalidate("sleep")  # the attempt's set-up reads the store: a real await
    return worker, created.task.id


async def assert_cancelled_and_free(parts: Components, worker: Worker, task_id: str) -> None:
    await asyncio.sleep(0.1)
    await worker.finisher.run_once(time.time())
    assert (await parts.service.get(task_id)).status == TaskStatus.CANCELLED
    assert worker.processor.running == {}
    assert worker.processor.load == 0


@pytest.mark.parametrize("steps", [0, 1, 3])
async def test_interrupt_as_the_attempt_launches_ends_it(both: Components, steps: int) -> None:
    """The cancel arrives after the start committed: before the attempt's first step (0), or
    while it is still being set up."""
    worker, task_id = await dispatched_sleep(both)
    await worker.processor.run_once(time.time())
    assert task_id in worker.processor.running
    for _ in range(steps):
        await asyncio.sleep(0)
    assert worker.processor.interrupt(task_id, StopReason.CANCELLED)
    await assert_cancelled_and_free(both, worker, task_id)


async def test_interrupt_while_the_start_commits_ends_it(both: Components) -> None:
    """The cancel arrives while the start is being written: fetched, not yet running."""
    worker, task_id = await dispatched_sleep(both)
    launch = asyncio.create_task(worker.processor.run_once(time.time()))
    for _ in range(10_000):  # loop steps until the fetch is back and the start is in flight
        if task_id in worker.processor.claimed:
            break
        await asyncio.sleep(0)
    assert task_id in worker.processor.claimed
    assert task_id not in worker.processor.running
    assert worker.processor.interrupt(task_id, StopReason.CANCELLED)
    await launch
    await assert_cancelled_and_free(both, worker, task_id)


async def test_cancels_racing_starts_always_free_the_slot(both: Components) -> None:
    rng = random.Random(11)
    worker = both.worker()
    scheduler = both.scheduler()
    await worker.start()
    await scheduler.start(time.time())
    try:
        ids: list[str] = []
        for _ in range(ROUNDS):
            both.catalog.invalidate("sleep")  # as when its config cache lapses: a wider window
            created = await both.service.submit([TaskRequest("sleep", LONG)] * 12)
            batch = [c.task.id for c in created]
            ids += batch
            await asyncio.sleep(rng.random() * 0.003)
            await asyncio.gather(*(cancel_soon(both, i, rng.random() * 0.002) for i in batch))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            statuses = [(await both.service.get(i)).status for i in ids]
            if all(s == TaskStatus.CANCELLED for s in statuses) and worker.processor.load == 0:
                break
            await asyncio.sleep(0.05)
        stuck = [i for i, s in zip(ids, statuses, strict=True) if s != TaskStatus.CANCELLED]
        assert stuck == [], f"{len(stuck)} of {len(ids)} tasks not cancelled"
        assert worker.processor.running == {}
        assert worker.processor.load == 0
    finally:
        await scheduler.stop()
        await worker.stop()

