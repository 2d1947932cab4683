"""A fetch whose reply was lost leaves ids in the active list; the reconciler hands them back
after seeing them twice, and never touches what the processor holds."""

from __future__ import annotations

import time

from conveyor.bootstrap import Components
from conveyor.service import TaskRequest


async def test_lost_fetch_is_handed_back(parts: Components) -> None:
    worker = parts.worker()
    await worker.heartbeat.run_once(time.time())
    scheduler = parts.scheduler()
    await scheduler.elector.run_once(time.time())
    await parts.service.submit([TaskRequest("echo", {"i": i}) for i in range(3)])
    await scheduler.dispatcher.run_once(time.time())
    queues = parts.coordination.worker_queues
    lost = await queues.fetch(worker.id, 2, 0.1)  # moved to active; the worker never saw them
    kept = await queues.fetch(worker.id, 1, 0.1)
    worker.processor.claimed.update(i.task_id for i in kept)

    await worker.reconciler.run_once(time.time())
    assert len(await queues.active(worker.id)) == 3  # first sighting: maybe a reply in flight
    await worker.reconciler.run_once(time.time())
    assert await queues.active(worker.id) == kept
    assert (await parts.coordination.queues.lengths())["normal"] == 2
    assert worker.reconciler.returned == len(lost)
    await worker.stop()


async def test_processing_row_the_worker_does_not_run_is_rerun(parts: Components) -> None:
    worker = parts.worker()
    await worker.heartbeat.run_once(time.time())
    [created] = await parts.service.submit([TaskRequest("echo", {"x": 1})])
    # The start committed, but its answer never reached the processor.
    await parts.store.moves.start([created.task.id], worker.id, time.time())

    await worker.reconciler.run_once(time.time())
    assert (await parts.store.tasks.get(created.task.id)).status == "PROCESSING"  # type: ignore[union-attr]
    await worker.reconciler.run_once(time.time())
    task = await parts.store.tasks.get(created.task.id)
    assert task is not None and task.status == "PENDING" and task.retry_count == 0
    logs = await parts.store.tasks.logs(task.id)
    assert logs[-2].to_status == "TIMEOUT" and logs[-2].worker_id == worker.id
    assert "lost track" in logs[-2].message
    await worker.stop()
