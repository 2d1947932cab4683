"""Stopped means stopped (docs/design.md §8.13), for every kind of work a worker runs.

Each kind (a plain function in a task process, a plain function in a thread, an async function,
an async function that swallows its cancellation, an HTTP call, a gRPC call) runs an attempt
that sleeps 3 s, and is timed out after 1 s or cancelled while running. Then:

* nothing of that attempt happens afterwards: its late journal line ("end 1", written after the
  sleep by the function or the business service) never appears for the kinds that can be
  stopped, and for the two that cannot it appears *before* the outcome is recorded;
* the retry (automatic after TIMEOUT, manual after CANCELLED) runs alone: it starts only after
  the stopped attempt's outcome was recorded and that attempt was gone;
* capacity is back: the worker holds no slot once the retry has finished.

Before the fix, a plain function ran in the thread pool whatever it was told: its "end 1"
appeared seconds after TIMEOUT / CANCELLED was recorded, beside the retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.process import Process
from conveyor.worker import Worker
from tests.integration.test_api import FAST, Api
from tests.support import stopping
from tests.support.stopping import read_journal

KINDS = ["process", "thread", "async", "stubborn", "http", "grpc"]
UNSTOPPABLE = {"thread", "stubborn"}
DELAYS = [3.0, 0.2]  # attempt 1 overruns; its retry is quick


@dataclass
class Env:
    api: Api
    worker: Worker
    task_type: str
    journal: Path


@asynccontextmanager
async def conveyor(tmp_path: Path, kind: str) -> AsyncIterator[Env]:
    settings = load_settings(
        database_url=str(tmp_path / "conveyor.db"), http_executor={"allowed_hosts": ["127.0.0.1"]},
        **FAST,
    )
    async with AsyncExitStack() as stack:
        parts = await build(settings, standalone=True, app=stopping.app)
        stack.push_async_callback(parts.close)
        await parts.store.migrate()
        transport = httpx.ASGITransport(app=create_app(parts.service))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://conveyor")
        )
        api = Api(parts, http)
        task_type = f"stop.{kind}"
        if kind in ("http", "grpc"):
            serve = stopping.http_service if kind == "http" else stopping.grpc_service
            address = await stack.enter_async_context(serve())
            key = "url" if kind == "http" else "target"
            put = await http.put(f"/api/v1/task-configs/{task_type}", json={
                "executor": kind, "executor_config": {key: address}, "max_retries": 1,
            })
            assert put.status_code == 200, put.text
        process = Process(settings, api=False, scheduler=True, worker=True, standalone=True,
                          parts=parts)
        await process.start()
        stack.push_async_callback(process.stop)
        assert process.worker is not None
        yield Env(api, process.worker, task_type, tmp_path / "journal")


@pytest.fixture(params=KINDS)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with conveyor(tmp_path, request.param) as built:
        yield built


async def logged_at(api: Api, task_id: str, status: str) -> float:
    """When the move to ``status`` of attempt 1 was recorded."""
    logs = (await api.http.get(f"/api/v1/tasks/{task_id}/logs")).json()["logs"]
    found = [x for x in logs if x["to_status"] == status and x["attempt"] == 1]
    assert len(found) == 1, logs
    return datetime.fromisoformat(found[0]["at"]).timestamp()


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def check_stopped(env: Env, task_id: str, stopped_as: str) -> None:
    """The assertions of the module docstring, once attempt 1 would have ended on its own."""
    final = await env.api.wait_final(task_id, timeout=15)
    assert final["status"] == "SUCCESS", final
    assert final["attempt"] == 2
    journal = env.journal
    first_start = next(at for at, event, n in read_journal(journal) if n == 1)
    await asyncio.sleep(max(0.0, first_start + DELAYS[0] + 0.7 - time.time()))
    lines = read_journal(journal)
    recorded = await logged_at(env.api, task_id, stopped_as)
    kind = env.task_type.removeprefix("stop.")
    events = [(event, n) for _, event, n in lines if event != "swallowed"]
    assert events.count(("start", 1)) == 1  # one call of attempt 1, never repeated
    assert events.count(("start", 2)) == 1
    assert ("end", 2) in events
    start_2 = next(at for at, event, n in lines if (event, n) == ("start", 2))
    late = [(at, event) for at, event, n in lines if n == 1 and event == "end"]
    if kind in UNSTOPPABLE:
        # It ran on, but the outcome waited for it, and so did its slot and the retry.
        assert len(late) == 1 and late[0][0] < recorded < start_2, (lines, recorded)
        assert env.worker.processor.unstoppable == 1
    else:
        assert late == [], f"attempt 1 went on after it was recorded {stopped_as}: {lines}"
        assert recorded < start_2
        assert env.worker.processor.unstoppable == 0
    await wait_for(lambda: env.worker.processor.load == 0, timeout=2)


async def test_an_overrunning_attempt_is_stopped(env: Env) -> None:
    task = await env.api.created(
        task_type=env.task_type, timeout_seconds=1, max_retries=1,
        payload={"journal": str(env.journal), "delays": DELAYS},
    )
    await check_stopped(env, task["task_id"], "TIMEOUT")


async def test_a_cancelled_attempt_is_stopped(env: Env) -> None:
    task = await env.api.created(
        task_type=env.task_type, timeout_seconds=30, max_retries=0,
        payload={"journal": str(env.journal), "delays": DELAYS},
    )
    task_id = task["task_id"]
    await wait_for(lambda: bool(read_journal(env.journal)))  # attempt 1 has really begun
    cancel = await env.api.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    assert (await env.api.wait_final(task_id))["status"] == "CANCELLED"
    retry = await env.api.http.post(f"/api/v1/tasks/{task_id}/retry")
    assert retry.status_code == 200, retry.text
    await check_stopped(env, task_id, "CANCELLED")
