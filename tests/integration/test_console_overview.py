"""The overview's added figures and the drift page's added parts, through the real app: started
and retried per second, queue wait and run time percentiles, the oldest due age per priority
and per type (Queues too), the lease's expiry, queue entries without a row (on every
coordination backend) and the drift samples kept for the chart."""

from __future__ import annotations

import time

import orjson

from conveyor.bootstrap import Components
from conveyor.models import Priority, QueueItem, TaskStatus
from conveyor.service import TaskRequest
from conveyor.store.protocol import Outcome
from tests.support.console import EVIL, Console, app_client, console, open_console

__all__ = ["console", "open_console"]  # fixtures


async def test_the_overview_shows_rates_timings_due_ages_and_the_lease(
    open_console: Console,
) -> None:
    c = open_console
    store, now = c.parts.store, time.time()
    [done, failed, _] = [m.task for m in await c.parts.service.submit(
        [TaskRequest("echo"), TaskRequest("echo"), TaskRequest("noop")])]
    await store.moves.start([done.id, failed.id], "w1", now)
    await store.moves.finish([Outcome(done.id, 1, TaskStatus.SUCCESS)], now + 0.5)
    await store.moves.finish([Outcome(failed.id, 1, TaskStatus.FAILED, retry_at=now + 60)], now)
    await c.parts.coordination.lease.acquire("sched-1", 10.0)
    await c.parts.coordination.lease.publish_status({"elector": now}, 10.0)
    page = (await c.http.get("/ui")).text
    assert 'data-series="created,started,succeeded,failed,retried"' in page
    assert 'data-started="0.400"' in page and 'data-retried="0.200"' in page  # 2 and 1 in 5 s
    assert 'data-run="50">500 ms<' in page and 'data-wait="99">' in page
    assert 'data-oldest="normal">' in page and 'id="lease-expiry"' in page
    assert 'data-state="WAITING">0<' in page and 'data-state="PENDING">2<' in page
    queues = (await c.http.get("/ui/queues")).text
    assert 'data-oldest="noop">' in queues and 'data-oldest="high">—<' in queues


async def test_queue_entries_without_a_row_are_drift(both: Components) -> None:
    async with app_client(both, False) as http:
        c = Console(both, http)
        ended = await c.task()  # queued at submit; finished behind the queue's back
        await both.store.moves.start([ended], "w1", time.time())
        await both.store.moves.finish([Outcome(ended, 1, TaskStatus.SUCCESS)], time.time())
        ghost = QueueItem("01GHOST0000000000000000000", EVIL, Priority.HIGH)
        await both.coordination.queues.enqueue([ghost])
        live = await c.task()  # queued, with its row: no drift
        page = await http.get("/ui/drift")
        assert page.status_code == 200, page.text
        assert f'data-entry="{ghost.task_id}"' in page.text and "missing" in page.text
        assert f'data-entry="{ended}"' in page.text and "SUCCESS" in page.text
        assert f'data-entry="{live}"' not in page.text and EVIL not in page.text
        assert "<strong>2</strong> of 3 queue entries" in page.text
        [chart] = [line for line in page.text.splitlines() if 'id="drift-chart"' in line]
        samples = chart.split('data-samples="')[1].split('"')[0].replace("&#34;", '"')
        times, unqueued, unrowed, stranded = orjson.loads(samples)
        assert len(times) == 1 and unrowed == [2] and unqueued == [0] and stranded == [0]
