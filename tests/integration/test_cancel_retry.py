"""A cancel names one attempt: retrying a task cancelled while running runs it to the end.

Through the real API with the worker and scheduler in-process, on the in-process coordination
(``conveyor standalone``) and on Redis (distributed mode). The cancel flag used to be keyed by
task id and outlive the attempt it stopped, so the retry was cancelled again by the canceller's
periodic check about a second after it started.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.conftest import REDIS_URL, redis_session
from tests.integration.test_api import Api, running, serve


@pytest.fixture(params=["local", "redis"])
async def api_on(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    database = str(tmp_path / "conveyor.db")
    if request.param == "local":
        async with serve(database) as built:
            yield built
        return
    async with redis_session() as session, serve(
        database, redis_url=REDIS_URL, redis_prefix=f"{session.prefix}{uuid.uuid4().hex[:6]}:"
    ) as built:
        yield built


async def wait_status(api: Api, task_id: str, status: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (await api.get(task_id))["status"] != status:
        assert time.monotonic() < deadline, f"task {task_id} never reached {status}"
        await asyncio.sleep(0.02)


async def cancel_running(api: Api, task_id: str) -> None:
    await wait_status(api, task_id, "PROCESSING")
    cancel = await api.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    assert (await api.wait_final(task_id))["status"] == "CANCELLED"


async def test_retry_after_cancel_while_running_succeeds(api_on: Api) -> None:
    api = api_on
    async with running(api):
        task_id = (await api.created(task_type="sleep", payload={"seconds": 2.5}))["task_id"]
        await cancel_running(api, task_id)
        # The retried attempt can itself be cancelled: the flag names the attempt running.
        assert (await api.http.post(f"/api/v1/tasks/{task_id}/retry")).status_code == 200
        await cancel_running(api, task_id)

        assert (await api.http.post(f"/api/v1/tasks/{task_id}/retry")).status_code == 200
        # Longer than the canceller's periodic check of the flags (1 s): the old flags, alive
        # for timeout + 60 s, would have cancelled this attempt too.
        final = await api.wait_final(task_id, timeout=10)
        assert final["status"] == "SUCCESS", final
        assert final["attempt"] == 3
        assert final["result"] == {"slept": 2.5}
