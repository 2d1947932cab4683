"""Drift between SQL and the coordination backend, as the repairing duties see it: PENDING
rows that no queue holds (the orphan sweeper re-queues them), queue entries whose task row is
missing or already final (a worker that fetches one finds nothing to start and drops it; until
then it counts in the queue's length), and PROCESSING tasks on workers that are no longer live
(the recoverer reclaims them).

Read-only and bounded: at most ``MAX_SCAN`` PENDING rows, oldest first, through the orphan
sweeper's own page query and the queues' ``tracked`` check; the first ``MAX_HEADS`` entries of
each priority queue (``peek``, which leaves them in place) looked up by id; and at most
``MAX_WORKERS`` workers of the durable history. Only rows older than
``scheduler.orphan_min_age`` count, so a create in flight is not reported. Rows and entries of
other tenants are left out for a tenant-bound key. The snapshot keeps a sample of these counts
every ``DRIFT_STEP`` seconds (``Snapshots.drift_history``), drawn on the page as a chart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from conveyor.models import Priority, QueueItem, Task
from conveyor.placement import queue_item
from conveyor.service import TaskService

MAX_SCAN = 5_000
MAX_HEADS = 1_000  # entries read from the head of each priority queue
DRIFT_STEP = 30.0  # seconds between the snapshot's drift samples
MAX_WORKERS = 200
PAGE = 500


@dataclass(frozen=True, slots=True)
class Drift:
    unqueued: list[Task]  # PENDING, old enough, in no queue
    scanned: int
    complete: bool  # every PENDING row old enough was scanned
    stranded: dict[str, list[Task]]  # worker id (not live) → its PROCESSING tasks
    unrowed: list[tuple[QueueItem, str]]  # queue entry → "missing" or its row's final state
    heads: int  # queue entries looked at
    at: float = 0.0  # when it was read

    @property
    def stranded_count(self) -> int:
        return sum(len(tasks) for tasks in self.stranded.values())


async def drift(service: TaskService, tenant: str | None) -> Drift:
    store, coord = service.store, service.coordination

    def mine(tasks: list[Task]) -> list[Task]:
        return [t for t in tasks if tenant is None or t.tenant == tenant]

    before = time.time() - service.settings.scheduler.orphan_min_age
    unqueued: list[Task] = []
    scanned, after, complete = 0, None, False
    while scanned < MAX_SCAN:
        page = await store.sweeps.pending_page(after, before, PAGE)
        if not page:
            complete = True
            break
        tracked = await coord.queues.tracked([queue_item(t) for t in page])
        unqueued += mine([t for t in page if t.id not in tracked])
        scanned += len(page)
        after = page[-1].id
    live = {w.worker_id for w in await coord.registry.live_workers()}
    stranded: dict[str, list[Task]] = {}
    records = await store.workers.list_worker_records()
    for record in [r for r in records if r.worker_id not in live][:MAX_WORKERS]:
        tasks = mine(await store.sweeps.processing_on(record.worker_id))
        if tasks:
            stranded[record.worker_id] = tasks
    heads = [i for p in Priority for i in await coord.queues.peek(p, MAX_HEADS)
             if tenant is None or i.tenant == tenant]
    rows = {t.id: t for t in await store.tasks.get_many([i.task_id for i in heads])}
    unrowed = [(i, "missing" if i.task_id not in rows else str(rows[i.task_id].status))
               for i in heads if i.task_id not in rows or rows[i.task_id].status.is_final]
    return Drift(unqueued, scanned, complete, stranded, unrowed, len(heads), time.time())
