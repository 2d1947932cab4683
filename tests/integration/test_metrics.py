"""Prometheus metrics against real in-process components.

A standalone set of parts (SQLite store, in-process coordination, the real scheduler and worker
duties) runs a mix of tasks that succeed, fail, retry, time out and get cancelled; the counters
the listener kept must then equal what the store recorded, and the sampled gauges must describe
the idle fleet. The metrics port is tested over real HTTP, the API middleware through an ASGI
transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families

from conveyor.bootstrap import Components, build
from conveyor.config import load_settings
from conveyor.errors import BackendUnavailable, ConfigError
from conveyor.events import Event, EventKind
from conveyor.models import FINAL_STATUSES, Priority, Task, TaskStatus
from conveyor.observability.metrics import (
    UNMATCHED_ROUTE,
    HttpMetrics,
    Metrics,
    MetricsListener,
    add_metrics_route,
)
from conveyor.observability.sampler import Sampler
from conveyor.observability.server import MetricsServer
from conveyor.process import Process
from conveyor.scheduler import Scheduler
from conveyor.service import TaskRequest
from conveyor.serving import check_backends
from conveyor.worker import Worker
from tests.support.finished import ended

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

FAST: dict[str, Any] = {
    "worker": {"capacity": 8, "queue_poll_interval": 0.05, "heartbeat_interval": 0.5,
               "heartbeat_ttl": 5.0},
    "scheduler": {"scan_interval": 0.05, "timeout_check_interval": 0.2,
                  "leader_renew_interval": 0.5, "leader_lock_ttl": 5.0},
    "tasks": {"backoff_base": 0.05, "backoff_cap": 0.1},
}


def parse(text: bytes | str) -> Samples:
    """Every sample of an exposition text, keyed by name and sorted labels."""
    body = text.decode() if isinstance(text, bytes) else text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: Samples, name: str, /, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, /, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


@dataclass
class Running:
    parts: Components
    metrics: Metrics
    scheduler: Scheduler
    worker: Worker


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    settings = load_settings(database_url=str(tmp_path / "c.db"), **FAST)
    parts = await build(settings, standalone=True)
    await parts.store.migrate()
    metrics = Metrics()
    parts.events.add(MetricsListener(metrics))
    process = Process(settings, api=False, scheduler=True, worker=True, parts=parts)
    await process.start()
    try:
        scheduler, worker = process.scheduler, process.worker
        assert scheduler is not None and worker is not None
        metrics.observe(
            Sampler(parts.coordination, scheduler=scheduler, worker=worker, stats=parts.store.stats,
                    store_every=0.0)
        )
        yield Running(parts, metrics, scheduler, worker)
    finally:
        await process.stop()
        await parts.close()


async def wait_final(parts: Components, ids: Sequence[str], timeout: float = 20.0) -> list[Task]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = await parts.store.tasks.get_many(ids)
        if all(t.status.is_final for t in tasks):
            return tasks
        assert time.monotonic() < deadline, [(t.task_type, t.status) for t in tasks]
        await asyncio.sleep(0.05)


async def test_counters_agree_with_the_store(running: Running) -> None:
    parts = running.parts
    created = await parts.service.submit([
        *(TaskRequest("echo", {"n": i}) for i in range(6)),
        TaskRequest("echo", {"urgent": True}, priority=Priority.HIGH),
        *(TaskRequest("fail", {"permanent": True}) for _ in range(2)),
        *(TaskRequest("fail", {"times": 1}) for _ in range(2)),  # one retry each, then success
        TaskRequest("sleep", {"seconds": 5}, timeout=0.2, max_retries=0),  # worker timeout
        TaskRequest("echo", {"later": True}, delay=600),  # cancelled while PENDING
    ])
    ids = [c.task.id for c in created]
    await parts.service.cancel(ids[-1])
    tasks = await wait_final(parts, ids)

    samples = parse(await running.metrics.scrape())
    counts = await parts.store.stats.count_by_status()
    for (task_type, status), count in counts.items():
        assert TaskStatus(status) in FINAL_STATUSES
        assert value(samples, "conveyor_tasks_finished_total", type=task_type,
                     status=status) == count, (task_type, status)
        assert value(samples, "conveyor_tasks_by_status", type=task_type, status=status) == count
    assert total(samples, "conveyor_tasks_finished_total") == len(ids)
    assert total(samples, "conveyor_tasks_created_total") == sum(counts.values()) == len(ids)
    assert value(samples, "conveyor_tasks_finished_total", type="sleep", status="TIMEOUT") == 1

    attempts = sum(t.attempt for t in tasks)
    retries = sum(t.retry_count for t in tasks)
    assert retries == 2
    assert total(samples, "conveyor_tasks_started_total") == attempts
    assert total(samples, "conveyor_tasks_retried_total") == retries
    assert value(samples, "conveyor_tasks_retried_total", type="fail") == retries
    # Every attempt that ran ended in an outcome (final or retry); the cancelled task never ran.
    assert total(samples, "conveyor_task_duration_seconds_count") == attempts
    assert total(samples, "conveyor_task_queue_wait_seconds_count") == attempts
    sleep_sum = value(samples, "conveyor_task_duration_seconds_sum", type="sleep")
    assert 0.2 <= sleep_sum < 5.0
    assert value(samples, "conveyor_dispatched_total") >= attempts


async def test_sampled_gauges_describe_the_fleet(running: Running) -> None:
    parts = running.parts
    created = await parts.service.submit(
        [TaskRequest("echo", {}), TaskRequest("echo", {}, delay=600)]
    )
    await wait_final(parts, [created[0].task.id])
    running.worker.heartbeat.last_run = None  # the sample must not rely on our own duty

    samples = parse(await running.metrics.scrape())
    worker_id = running.worker.id
    assert value(samples, "conveyor_coordination_up") == 1
    assert value(samples, "conveyor_scheduler_is_leader") == 1
    assert value(samples, "conveyor_scheduler_epoch") >= 1
    for priority in ("high", "normal", "low"):
        assert ("conveyor_queue_length", (("priority", priority),)) in samples
    assert value(samples, "conveyor_delayed_tasks") == 1
    assert value(samples, "conveyor_workers_online") == 1
    assert value(samples, "conveyor_worker_capacity", worker=worker_id) == 8
    assert value(samples, "conveyor_worker_running_tasks", worker=worker_id) == 0
    assert ("conveyor_worker_load", (("worker", worker_id),)) in samples
    lag = value(samples, "conveyor_heartbeat_lag_seconds", worker=worker_id)
    assert 0 <= lag < 5.0
    last = value(samples, "conveyor_duty_last_run_timestamp_seconds", duty="elector")
    assert time.time() - 10 < last <= time.time()

    await parts.coordination.queues.set_paused("low", True)
    samples = parse(await running.metrics.scrape())
    assert value(samples, "conveyor_queue_paused", name="low") == 1


async def test_retention_counts_the_rows_it_removed(running: Running) -> None:
    """The standalone scheduler runs the retention duty; its counter is per table."""
    now = time.time()
    await ended(running.parts.store, TaskStatus.SUCCESS, now - 8 * 86_400, 2)
    await running.scheduler.retention.run_once(now)
    samples = parse(await running.metrics.scrape())
    assert value(samples, "conveyor_retention_rows_removed_total", table="task") == 2
    assert value(samples, "conveyor_retention_rows_removed_total", table="task_logs") == 6


class _BrokenQueues:
    async def lengths(self) -> dict[str, int]:
        raise ConnectionError("redis is down")

    def __getattr__(self, name: str) -> Any:
        raise ConnectionError("redis is down")


async def test_an_unreachable_backend_is_reported_not_raised(tmp_path: Path) -> None:
    parts = await build(load_settings(database_url=str(tmp_path / "c.db")), standalone=True)
    try:
        metrics = Metrics()
        broken = replace(parts.coordination, queues=_BrokenQueues())
        metrics.observe(Sampler(broken))
        samples = parse(await metrics.scrape())
        assert value(samples, "conveyor_coordination_up") == 0
        assert not any(name == "conveyor_queue_length" for name, _ in samples)

        with pytest.raises(BackendUnavailable, match="coordination backend unreachable"):
            await check_backends(parts.store, broken)
    finally:
        await parts.close()


def _task(**changes: Any) -> Task:
    base = Task(
        id="t1", task_type="fail", priority=Priority.NORMAL, payload={},
        status=TaskStatus.PENDING, max_retries=3, timeout=30.0, created_at=100.0, run_at=100.0,
    )
    return replace(base, **changes)


def test_manual_retries_and_pending_cancels_are_not_attempts() -> None:
    """A reopen and a cancel of a PENDING task carry the old attempt's ``started_at``; neither
    may add an attempt duration (it would be the time since that old start)."""
    metrics = Metrics()
    listener = MetricsListener(metrics)
    listener.notify(Event(EventKind.STARTED, _task(status=TaskStatus.PROCESSING,
                                                   started_at=102.0, attempt=1), 102.0))
    listener.notify(Event(EventKind.RETRYING, _task(error="boom", started_at=102.0,
                                                    run_at=110.0, retry_count=1), 105.0))
    listener.notify(Event(EventKind.CANCELLED, _task(status=TaskStatus.CANCELLED, error="boom",
                                                     started_at=102.0, run_at=110.0,
                                                     finished_at=107.0), 107.0))
    listener.notify(Event(EventKind.RETRYING, _task(started_at=102.0, run_at=500.0), 500.0))
    samples = parse(metrics.render())
    assert value(samples, "conveyor_task_queue_wait_seconds_sum", type="fail") == 2.0
    assert value(samples, "conveyor_task_duration_seconds_count", type="fail") == 1
    assert value(samples, "conveyor_task_duration_seconds_sum", type="fail") == 3.0
    assert value(samples, "conveyor_tasks_retried_total", type="fail") == 1
    assert value(samples, "conveyor_tasks_manual_retries_total", type="fail") == 1
    assert value(samples, "conveyor_tasks_finished_total", type="fail", status="CANCELLED") == 1


def test_a_listener_per_process_keeps_registries_apart() -> None:
    first, second = Metrics(), Metrics()
    MetricsListener(first).notify(Event(EventKind.CREATED, _task(), 100.0))
    assert value(parse(first.render()), "conveyor_tasks_created_total", type="fail") == 1
    assert value(parse(second.render()), "conveyor_tasks_created_total", type="fail") == 0


async def test_metrics_server_serves_probes_over_http(tmp_path: Path) -> None:
    parts = await build(load_settings(database_url=str(tmp_path / "c.db")), standalone=True)
    metrics = Metrics()
    MetricsListener(metrics).notify(Event(EventKind.CREATED, _task(), 100.0))
    server = MetricsServer(metrics, 0, lambda: check_backends(parts.store, parts.coordination),
                           host="127.0.0.1")
    unready = MetricsServer(metrics, 0, _never_ready, host="127.0.0.1")
    await server.start()
    await unready.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            assert value(parse(scraped.text), "conveyor_tasks_created_total", type="fail") == 1
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unready.port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            refused = await client.get("/readyz")
            assert refused.status_code == 503
            assert refused.json() == {"status": "unready", "reason": "store unreachable: nope"}
    finally:
        await server.stop()
        await unready.stop()
        await parts.close()


async def test_metrics_server_refuses_a_taken_port() -> None:
    metrics = Metrics()
    first = MetricsServer(metrics, 0, _never_ready, host="127.0.0.1")
    await first.start()
    try:
        with pytest.raises(ConfigError, match="cannot listen on"):
            await MetricsServer(metrics, first.port, _never_ready, host="127.0.0.1").start()
    finally:
        await first.stop()


async def _never_ready() -> None:
    raise RuntimeError("store unreachable: nope")


async def test_http_middleware_labels_route_templates() -> None:
    metrics = Metrics()
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    nested = APIRouter(prefix="/v1")

    @nested.get("/things/{thing_id}/parts/{part}")
    async def part(thing_id: str, part: str) -> dict[str, str]:
        return {"thing": thing_id, "part": part}

    app.include_router(nested, prefix="/api")
    app.add_middleware(HttpMetrics, metrics=metrics)
    add_metrics_route(app, metrics)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/items/1", "/items/2", "/items/x", "/nowhere", "/boom",
                     "/api/v1/things/a1/parts/b2", "/api/v1/things/same/parts/same",
                     "/openapi.json"):
            await client.get(path)
        scraped = await client.get("/metrics")
    assert "/metrics" not in app.openapi()["paths"]
    samples = parse(scraped.text)
    requests = "conveyor_http_requests_total"
    assert value(samples, requests, method="GET", route="/items/{item_id}", status="200") == 2
    assert value(samples, requests, method="GET", route="/items/{item_id}", status="422") == 1
    assert value(samples, requests, method="GET", route=UNMATCHED_ROUTE, status="404") == 1
    assert value(samples, requests, method="GET", route="/boom", status="500") == 1
    assert value(samples, "conveyor_http_request_duration_seconds_count",
                 route="/items/{item_id}") == 3
    nested_route = "/api/v1/things/{thing_id}/parts/{part}"
    assert value(samples, requests, method="GET", route=nested_route, status="200") == 1
    # Two parameters with one value cannot be told apart: the route's own (prefix-less) path.
    assert value(samples, requests, method="GET", route="/v1/things/{thing_id}/parts/{part}",
                 status="200") == 1
    assert value(samples, requests, method="GET", route="/openapi.json", status="200") == 1
    routes = {dict(labels).get("route", "") for _, labels in samples}
    assert not any(r.startswith("/items/") and "{" not in r for r in routes)
