"""A worker whose process died is reaped before its heartbeat TTL runs out (issue 10,
finding 7): once it is late with a heartbeat and its Redis connections stay closed for as long
again, the recoverer gives its work back. A late worker still connected is left alone."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path

from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.coordination.redis import connect_redis
from conveyor.models import WorkerInfo
from conveyor.service import TaskRequest
from tests.integration.conftest import REDIS_URL, drop_prefix


async def test_recoverer_reaps_a_worker_whose_connections_closed(tmp_path: Path) -> None:
    prefix = f"cvit{uuid.uuid4().hex[:10]}:"
    parts = await build(load_settings(
        database_url=str(tmp_path / "c.db"), redis_url=REDIS_URL, redis_prefix=prefix,
    ), standalone=True)
    await parts.store.migrate()
    worker_side = await connect_redis(REDIS_URL, prefix, client_name=f"{prefix[:-1]}-w")
    try:
        now = time.time()
        beat = WorkerInfo("doomed", "h", 1, 4)
        late = parts.settings.worker.heartbeat_interval * 1.5
        await worker_side.registry.heartbeat(replace(beat, last_heartbeat=now - late - 1), 60)
        scheduler = parts.scheduler()
        await scheduler.elector.run_once(now)
        await parts.service.submit([TaskRequest("echo")])
        await scheduler.dispatcher.run_once(now)
        assert (await parts.coordination.queues.lengths())["normal"] == 0

        await scheduler.recoverer.run_once(now)  # late, but its connection is open
        await scheduler.recoverer.run_once(now + late + 1)
        assert [w.worker_id for w in await parts.coordination.registry.live_workers()] == [
            "doomed"]

        await worker_side.close()  # the process is gone
        await scheduler.recoverer.run_once(now + late + 2)  # seen closed once: not yet
        assert len(await parts.coordination.registry.live_workers()) == 1
        await scheduler.recoverer.run_once(now + 2 * late + 2)
        assert await parts.coordination.registry.live_workers() == []
        assert (await parts.coordination.queues.lengths())["normal"] == 1
    finally:
        await worker_side.close()
        await parts.close()
        await drop_prefix(prefix)

