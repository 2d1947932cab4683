"""A worker drained through the API (the console's button posts the same request), on every
coordination backend: at its next heartbeat it publishes ``draining``, the dispatcher gives it
nothing more, the task it runs finishes, and it stays registered, idle, until stopped. A
request naming another process under the same id drains nothing."""

from __future__ import annotations

import asyncio
import time

import httpx

from conveyor.api.app import create_app
from conveyor.apikeys import Scope
from conveyor.bootstrap import Components
from conveyor.models import TaskStatus
from conveyor.service import TaskRequest
from tests.support.console import Console, console

__all__ = ["console"]  # fixture


async def test_a_drained_worker_finishes_its_task_and_takes_no_new_one(both: Components) -> None:
    worker = both.worker()
    registry = both.coordination.registry
    await worker.heartbeat.run_once(time.time())
    [running] = await both.service.submit([TaskRequest("sleep", {"seconds": 0.3})])
    scheduler = both.scheduler()
    await scheduler.elector.run_once(time.time())
    await scheduler.dispatcher.run_once(time.time())
    await worker.processor.run_once(time.time())
    assert running.task.id in worker.processor.running
    await registry.request_drain(worker.id, worker.heartbeat.info.started_at + 1, 60)
    await worker.heartbeat.run_once(time.time())
    assert not worker.heartbeat.draining  # a request for another process under this id
    app = create_app(both.service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        asked = await http.post(f"/api/v1/workers/{worker.id}/drain")
        assert asked.status_code == 202 and asked.json()["worker_id"] == worker.id, asked.text
        missing = await http.post("/api/v1/workers/nobody/drain")
        assert missing.status_code == 404 and "nobody" in missing.text
    await worker.heartbeat.run_once(time.time())
    [me] = await registry.live_workers()
    assert me.draining and worker.heartbeat.draining
    [later] = await both.service.submit([TaskRequest("echo")])
    await scheduler.dispatcher.run_once(time.time())
    if runners := worker.processor.runners():  # the attempt may have ended meanwhile
        await asyncio.wait(runners)
    await worker.finisher.run_once(time.time())
    assert (await both.service.get(running.task.id)).status is TaskStatus.SUCCESS
    assert (await both.service.get(later.task.id)).status is TaskStatus.PENDING
    assert (await both.coordination.queues.lengths())["normal"] == 1  # not sent to the worker
    assert [w.worker_id for w in await registry.live_workers()] == [worker.id]  # idles
    await worker.stop()


async def test_the_console_drains_a_worker_with_an_admin_key_only(console: Console) -> None:
    c = console
    worker = c.parts.worker()
    await worker.heartbeat.run_once(time.time())
    path = f"/ui/workers/{worker.id}/drain"
    await c.login(Scope.READ)
    assert 'data-action="Drain"' not in (await c.http.get("/ui/workers")).text
    assert (await c.post(path, "/ui/workers")).status_code == 403
    await c.login(Scope.ADMIN)
    assert 'data-action="Drain"' in (await c.http.get("/ui/workers")).text
    forged = await c.http.post(path, data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert await c.parts.coordination.registry.drain_requested(worker.id) is None
    done = await c.post(path, "/ui/workers")
    assert done.status_code == 303 and done.headers["location"] == "/ui/workers"
    await worker.heartbeat.run_once(time.time())
    page = (await c.http.get("/ui/workers")).text
    assert "draining" in page and 'data-action="Drain"' not in page
    gone = await c.post("/ui/workers/nobody/drain", "/ui/workers")
    assert gone.status_code == 404 and "no live worker" in gone.text
    await worker.stop()
