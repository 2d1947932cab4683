"""The REST API through httpx against the real app, on real databases.

Every test builds the process's components with ``bootstrap.build`` on its own database (a
SQLite file in ``tmp_path``, or a throw-away MariaDB / PostgreSQL database for the tests that
are parametrized over ``BACKENDS``). Without a worker, tasks stay PENDING; the tests that need
execution run the worker and scheduler duties in-process, as ``conveyor standalone`` does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.bootstrap import Components, build
from conveyor.config import load_settings
from conveyor.process import Process
from tests.support.databases import BACKENDS, fresh_database

FAST = {
    "worker": {"queue_poll_interval": 0.05, "heartbeat_interval": 1, "heartbeat_ttl": 3,
               "graceful_shutdown_timeout": 2},
    "scheduler": {"scan_interval": 0.1, "timeout_check_interval": 0.5},
    "tasks": {"backoff_base": 0.05, "backoff_cap": 0.2},
}


@dataclass
class Api:
    parts: Components
    http: httpx.AsyncClient

    async def create(self, **body: Any) -> httpx.Response:
        body.setdefault("task_type", "echo")
        return await self.http.post("/api/v1/tasks", json=body)

    async def created(self, **body: Any) -> dict[str, Any]:
        response = await self.create(**body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def get(self, task_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def all_tasks(self) -> list[dict[str, Any]]:
        """Every task through the list endpoint, following the cursor."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = (await self.http.get("/api/v1/tasks", params=params)).json()
            found += page["tasks"]
            if not (cursor := page["next_cursor"]):
                return found

    async def stored(self) -> int:
        """Rows in the task table, straight from the store."""
        return sum((await self.parts.store.stats.count_by_status()).values())

    async def wait_final(self, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = await self.get(task_id)
            if task["status"] in ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED"):
                return task
            assert time.monotonic() < deadline, f"task still {task['status']}: {task}"
            await asyncio.sleep(0.02)


@asynccontextmanager
async def serve(database_url: str, **flags: Any) -> AsyncIterator[Api]:
    settings = load_settings(database_url=database_url, **{**FAST, **flags})
    parts = await build(settings, standalone=True)
    try:
        await parts.store.migrate()
        transport = httpx.ASGITransport(app=create_app(parts.service))
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor") as http:
            yield Api(parts, http)
    finally:
        await parts.close()


@asynccontextmanager
async def running(api: Api) -> AsyncIterator[None]:
    """Worker and scheduler in this event loop, started and stopped as a process does."""
    process = Process(
        api.parts.settings, api=False, scheduler=True, worker=True, standalone=True,
        parts=api.parts,
    )
    await process.start()
    try:
        yield
    finally:
        await process.stop()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(str(tmp_path / "conveyor.db")) as built:
        yield built


@pytest.fixture(params=BACKENDS)
async def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    async with fresh_database(request.param, tmp_path) as url, serve(url) as built:
        yield built


def error_of(response: httpx.Response, status: int) -> str:
    """Assert the error shape and return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    message: str = body["error"]["message"]
    return message


# -- create and read ------------------------------------------------------------------------


async def test_create_answers_201_with_the_task(any_api: Api) -> None:
    response = await any_api.create(task_type="echo", priority="high", payload={"x": 1})
    assert response.status_code == 201
    task = response.json()
    assert task["status"] == "PENDING"
    assert task["task_type"] == "echo"
    assert task["priority"] == "high"
    assert task["payload"] == {"x": 1}
    assert task["attempt"] == 0
    assert task["retry_count"] == 0
    assert task["max_retries"] == 3  # settings default; echo registers none
    assert task["timeout_seconds"] == 30  # echo's registration
    assert task["created"] is True
    assert task["created_at"] and task["run_at"]
    assert task["result"] is None and task["error"] is None

    fetched = await any_api.get(task["task_id"])
    assert fetched["task_id"] == task["task_id"]
    assert fetched["status"] == "PENDING"
    assert fetched["payload"] == {"x": 1}


@pytest.mark.parametrize(
    ("given", "label"),
    [("high", "high"), ("LOW", "low"), (2, "high"), (1, "normal"), (0, "low"), ("1", "normal"),
     (None, "normal")],
)
async def test_create_priority_forms(api: Api, given: object, label: str) -> None:
    body: dict[str, Any] = {"task_type": "echo"}
    if given is not None:
        body["priority"] = given
    assert (await api.created(**body))["priority"] == label


async def test_create_with_every_field(api: Api) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    task = await api.created(
        task_type="echo", payload={"a": [1, 2]}, priority="low", timeout_seconds=2.5,
        max_retries=0, run_at=run_at.isoformat(), idempotency_key="k-1",
        metadata={"tenant": "t1"},
    )
    assert task["timeout_seconds"] == 2.5
    assert task["max_retries"] == 0
    assert task["idempotency_key"] == "k-1"
    assert task["metadata"] == {"tenant": "t1"}
    assert abs(datetime.fromisoformat(task["run_at"]) - run_at) < timedelta(seconds=1)

    delayed = await api.created(task_type="echo", delay_seconds=60)
    delay = datetime.fromisoformat(delayed["run_at"]) - datetime.fromisoformat(
        delayed["created_at"])
    assert abs(delay - timedelta(seconds=60)) < timedelta(seconds=1)


async def test_get_unknown_task_is_404(any_api: Api) -> None:
    message = error_of(await any_api.http.get("/api/v1/tasks/nosuchtask"), 404)
    assert "nosuchtask" in message
    for path in ("/api/v1/tasks/nosuchtask/logs",):
        assert "nosuchtask" in error_of(await any_api.http.get(path), 404)
    for path in ("/api/v1/tasks/nosuchtask/cancel", "/api/v1/tasks/nosuchtask/retry"):
        assert "nosuchtask" in error_of(await any_api.http.post(path), 404)
    response = await any_api.http.patch("/api/v1/tasks/nosuchtask", json={"priority": "low"})
    assert "nosuchtask" in error_of(response, 404)


async def test_idempotency_key_gives_one_task(any_api: Api) -> None:
    first = await any_api.create(task_type="echo", payload={"n": 1}, idempotency_key="order-7")
    assert first.status_code == 201
    assert first.json()["created"] is True
    again = await any_api.create(task_type="echo", payload={"n": 2}, idempotency_key="order-7")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["payload"] == {"n": 1}  # the existing task, unchanged
    # The key is scoped by type: another type gets its own task.
    other = await any_api.create(task_type="sleep", idempotency_key="order-7")
    assert other.status_code == 201
    assert other.json()["task_id"] != first.json()["task_id"]
    assert await any_api.stored() == 2


async def test_idempotency_key_in_a_batch(api: Api) -> None:
    existing = await api.created(task_type="echo", idempotency_key="dup")
    response = await api.http.post("/api/v1/tasks/batch", json={"tasks": [
        {"task_type": "echo", "idempotency_key": "dup"},
        {"task_type": "echo", "idempotency_key": "fresh"},
    ]})
    assert response.status_code == 201
    tasks = response.json()["tasks"]
    assert tasks[0]["task_id"] == existing["task_id"]
    assert tasks[0]["created"] is False
    assert tasks[1]["created"] is True
    assert await api.stored() == 2


async def test_concurrent_creates_with_one_key_make_one_task(any_api: Api) -> None:
    responses = await asyncio.gather(*(
        any_api.create(task_type="echo", idempotency_key="race") for _ in range(8)
    ))
    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.json()["task_id"] for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    assert await any_api.stored() == 1


# -- batch ----------------------------------------------------------------------------------


async def test_batch_create_1000(any_api: Api) -> None:
    tasks = [{"task_type": "echo", "payload": {"i": i}, "priority": i % 3} for i in range(1000)]
    response = await any_api.http.post("/api/v1/tasks/batch", json={"tasks": tasks})
    assert response.status_code == 201, response.text
    out = response.json()["tasks"]
    assert len(out) == 1000
    assert [t["payload"]["i"] for t in out] == list(range(1000))  # order kept
    assert len({t["task_id"] for t in out}) == 1000
    assert {t["status"] for t in out} == {"PENDING"}
    assert await any_api.stored() == 1000
    assert len(await any_api.all_tasks()) == 1000


async def test_batch_over_1000_is_refused(api: Api) -> None:
    tasks = [{"task_type": "echo"} for _ in range(1001)]
    message = error_of(await api.http.post("/api/v1/tasks/batch", json={"tasks": tasks}), 422)
    assert "1000" in message
    assert await api.stored() == 0


async def test_empty_batch_is_refused(api: Api) -> None:
    error_of(await api.http.post("/api/v1/tasks/batch", json={"tasks": []}), 422)


# -- list -----------------------------------------------------------------------------------


async def test_list_filters_and_cursor_paging(api: Api) -> None:
    echoes = [await api.created(task_type="echo", payload={"i": i}) for i in range(5)]
    sleeps = [await api.created(task_type="sleep") for _ in range(2)]
    cancelled = await api.http.post(f"/api/v1/tasks/{echoes[0]['task_id']}/cancel")
    assert cancelled.status_code == 200

    by_type = (await api.http.get("/api/v1/tasks", params={"type": "sleep"})).json()
    assert {t["task_id"] for t in by_type["tasks"]} == {t["task_id"] for t in sleeps}

    by_status = (await api.http.get("/api/v1/tasks", params={"status": "CANCELLED"})).json()
    assert [t["task_id"] for t in by_status["tasks"]] == [echoes[0]["task_id"]]

    both = (await api.http.get(
        "/api/v1/tasks", params={"status": "PENDING", "type": "echo"})).json()
    assert {t["task_id"] for t in both["tasks"]} == {t["task_id"] for t in echoes[1:]}

    # Newest first, pages of 3 linked by the cursor, nothing seen twice or skipped.
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.http.get("/api/v1/tasks", params=params)).json()
        pages += 1
        assert len(page["tasks"]) <= 3
        seen += [t["task_id"] for t in page["tasks"]]
        if not (cursor := page["next_cursor"]):
            break
    every = [t["task_id"] for t in (*echoes, *sleeps)]
    assert seen == list(reversed(every))
    assert pages == 3


async def test_list_created_range(api: Api) -> None:
    old = await api.created(task_type="echo")
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    new = await api.created(task_type="echo")

    after = (await api.http.get(
        "/api/v1/tasks", params={"created_from": middle.isoformat()})).json()
    assert [t["task_id"] for t in after["tasks"]] == [new["task_id"]]
    before = (await api.http.get(
        "/api/v1/tasks", params={"created_to": middle.isoformat()})).json()
    assert [t["task_id"] for t in before["tasks"]] == [old["task_id"]]
    window = (await api.http.get("/api/v1/tasks", params={
        "created_from": (middle - timedelta(hours=1)).isoformat(),
        "created_to": (middle + timedelta(hours=1)).isoformat(),
    })).json()
    assert len(window["tasks"]) == 2


@pytest.mark.parametrize(
    "params",
    [{"status": "DONE"}, {"limit": 0}, {"limit": 1001}, {"type": "bad type!"},
     {"created_from": "yesterday"}],
)
async def test_list_bad_filters(api: Api, params: dict[str, Any]) -> None:
    error_of(await api.http.get("/api/v1/tasks", params=params), 422)


# -- cancel, retry, priority, logs ----------------------------------------------------------


async def test_cancel_pending(api: Api) -> None:
    task = await api.created(task_type="echo")
    response = await api.http.post(f"/api/v1/tasks/{task['task_id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["cancel_requested"] is False
    assert (await api.get(task["task_id"]))["status"] == "CANCELLED"
    # A second cancel: the task is finished now.
    again = await api.http.post(f"/api/v1/tasks/{task['task_id']}/cancel")
    assert "CANCELLED" in error_of(again, 409)


async def test_patch_priority(any_api: Api) -> None:
    task = await any_api.created(task_type="echo", priority="low")
    response = await any_api.http.patch(
        f"/api/v1/tasks/{task['task_id']}", json={"priority": "high"})
    assert response.status_code == 200, response.text
    assert response.json()["priority"] == "high"
    assert (await any_api.get(task["task_id"]))["priority"] == "high"
    message = error_of(await any_api.http.patch(
        f"/api/v1/tasks/{task['task_id']}", json={"priority": "urgent"}), 422)
    assert "urgent" in message
    error_of(await any_api.http.patch(f"/api/v1/tasks/{task['task_id']}", json={}), 422)


async def test_patch_priority_of_a_finished_task_is_409(api: Api) -> None:
    task = await api.created(task_type="echo")
    await api.http.post(f"/api/v1/tasks/{task['task_id']}/cancel")
    response = await api.http.patch(f"/api/v1/tasks/{task['task_id']}", json={"priority": 2})
    assert "PENDING" in error_of(response, 409)


async def test_retry_of_pending_is_409(api: Api) -> None:
    task = await api.created(task_type="echo")
    message = error_of(await api.http.post(f"/api/v1/tasks/{task['task_id']}/retry"), 409)
    assert "PENDING" in message


async def test_retry_of_cancelled_reopens_it(api: Api) -> None:
    task = await api.created(task_type="echo")
    await api.http.post(f"/api/v1/tasks/{task['task_id']}/cancel")
    response = await api.http.post(f"/api/v1/tasks/{task['task_id']}/retry")
    assert response.status_code == 200
    assert response.json()["status"] == "PENDING"


async def test_execution_results_retry_cancel_and_logs(api: Api) -> None:
    async with running(api):
        ok = await api.created(task_type="echo", payload={"x": 1})
        failed = await api.created(task_type="fail", payload={"permanent": True})
        done = await api.wait_final(ok["task_id"])
        assert done["status"] == "SUCCESS"
        assert done["result"] == {"x": 1}
        assert done["attempt"] == 1
        assert done["started_at"] and done["finished_at"] and done["worker_id"]
        gone = await api.wait_final(failed["task_id"])
        assert gone["status"] == "FAILED"
        assert "permanently" in gone["error"]
        assert gone["retry_count"] == 0

        # Finished tasks: cancel → 409; retry of SUCCESS → 409; retry of FAILED → PENDING.
        message = error_of(await api.http.post(f"/api/v1/tasks/{ok['task_id']}/cancel"), 409)
        assert "SUCCESS" in message
        message = error_of(await api.http.post(f"/api/v1/tasks/{ok['task_id']}/retry"), 409)
        assert "SUCCESS" in message and "FAILED" in message
        reopened = await api.http.post(f"/api/v1/tasks/{failed['task_id']}/retry")
        assert reopened.status_code == 200
        assert reopened.json()["status"] == "PENDING"
        again = await api.wait_final(failed["task_id"])
        assert again["status"] == "FAILED"
        assert again["attempt"] == 2

        logs = (await api.http.get(f"/api/v1/tasks/{ok['task_id']}/logs")).json()
        assert logs["task_id"] == ok["task_id"]
        moves = [(x["from_status"], x["to_status"]) for x in logs["logs"]]
        assert moves == [(None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "SUCCESS")]
        assert logs["logs"][2]["worker_id"] == done["worker_id"]
        assert [x["attempt"] for x in logs["logs"]] == [0, 1, 1]

        flogs = (await api.http.get(f"/api/v1/tasks/{failed['task_id']}/logs")).json()["logs"]
        assert [(x["from_status"], x["to_status"]) for x in flogs] == [
            (None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "FAILED"),
            ("FAILED", "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "FAILED"),
        ]
        assert "manual retry" in flogs[3]["message"]


async def test_running_task_cancelled(api: Api) -> None:
    async with running(api):
        task = await api.created(task_type="sleep", payload={"seconds": 30})
        deadline = time.monotonic() + 5
        while (await api.get(task["task_id"]))["status"] != "PROCESSING":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        response = await api.http.post(f"/api/v1/tasks/{task['task_id']}/cancel")
        assert response.status_code == 202
        assert response.json()["cancel_requested"] is True
        started = time.monotonic()
        final = await api.wait_final(task["task_id"], timeout=5)
        assert final["status"] == "CANCELLED"
        assert time.monotonic() - started < 2


# -- task configs ---------------------------------------------------------------------------


async def test_task_config_crud_and_defaults(any_api: Api) -> None:
    http = any_api.http
    body = {
        "executor": "http",
        "executor_config": {"url": "http://127.0.0.1:1/run", "method": "POST"},
        "timeout_seconds": 12,
        "max_retries": 7,
        "priority": "low",
    }
    # Without a config, the type is unknown.
    assert "report.render" in error_of(await any_api.create(task_type="report.render"), 422)

    put = await http.put("/api/v1/task-configs/report.render", json=body)
    assert put.status_code == 200, put.text
    saved = put.json()
    assert saved["task_type"] == "report.render"
    assert saved["executor"] == "http"
    assert saved["executor_config"] == body["executor_config"]
    assert (saved["timeout_seconds"], saved["max_retries"], saved["priority"]) == (12, 7, "low")

    got = await http.get("/api/v1/task-configs/report.render")
    assert got.status_code == 200
    assert got.json()["executor_config"]["url"] == "http://127.0.0.1:1/run"
    listed = (await http.get("/api/v1/task-configs")).json()["configs"]
    assert [c["task_type"] for c in listed] == ["report.render"]

    task = await any_api.created(task_type="report.render", payload={"id": 3})
    assert (task["timeout_seconds"], task["max_retries"], task["priority"]) == (12, 7, "low")
    explicit = await any_api.created(
        task_type="report.render", timeout_seconds=1, max_retries=0, priority="high")
    assert (explicit["timeout_seconds"], explicit["max_retries"], explicit["priority"]) == (
        1, 0, "high")

    # A PUT replaces the config and applies at once.
    body["max_retries"] = 2
    assert (await http.put("/api/v1/task-configs/report.render", json=body)).status_code == 200
    assert (await any_api.created(task_type="report.render"))["max_retries"] == 2

    deleted = await http.delete("/api/v1/task-configs/report.render")
    assert deleted.status_code == 204
    error_of(await http.get("/api/v1/task-configs/report.render"), 404)
    error_of(await http.delete("/api/v1/task-configs/report.render"), 404)
    assert (await http.get("/api/v1/task-configs")).json()["configs"] == []
    error_of(await any_api.create(task_type="report.render"), 422)


async def test_task_config_overrides_a_registration(api: Api) -> None:
    put = await api.http.put(
        "/api/v1/task-configs/echo", json={"timeout_seconds": 4, "priority": "high"})
    assert put.status_code == 200
    task = await api.created(task_type="echo")
    assert task["timeout_seconds"] == 4
    assert task["priority"] == "high"
    assert task["max_retries"] == 3  # not in the config: settings default


async def test_disabled_task_config_refuses_tasks(api: Api) -> None:
    await api.http.put("/api/v1/task-configs/echo", json={"enabled": False})
    assert "disabled" in error_of(await api.create(task_type="echo"), 422)
    assert await api.stored() == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/task-configs/bad%20type", {}),
        ("/api/v1/task-configs/ok", {"timeout_seconds": -1}),
        ("/api/v1/task-configs/ok", {"priority": "urgent"}),
        ("/api/v1/task-configs/ok", {"max_retries": "many"}),
        ("/api/v1/task-configs/ok", {"unknown": 1}),
        ("/api/v1/task-configs/ok", {"executor": "no spaces allowed"}),
    ],
)
async def test_task_config_bad_input(api: Api, path: str, body: dict[str, Any]) -> None:
    error_of(await api.http.put(path, json=body), 422)
    assert (await api.http.get("/api/v1/task-configs")).json()["configs"] == []


# -- health and docs ------------------------------------------------------------------------


async def test_health_readiness_and_docs(api: Api) -> None:
    health = await api.http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    docs = await api.http.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    spec = (await api.http.get("/openapi.json")).json()
    assert spec["info"]["title"] == "Conveyor"
    for path in ("/api/v1/tasks", "/api/v1/tasks/batch", "/api/v1/tasks/{task_id}",
                 "/api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{task_id}/retry",
                 "/api/v1/tasks/{task_id}/logs", "/api/v1/task-configs",
                 "/api/v1/task-configs/{task_type}"):
        assert path in spec["paths"], path


async def test_unknown_route_and_method(api: Api) -> None:
    error_of(await api.http.get("/api/v1/nothing"), 404)
    error_of(await api.http.delete("/api/v1/tasks"), 405)


# -- bad input ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad request: what to send, the status expected, words the message must hold."""

    name: str
    path: str
    status: int
    words: tuple[str, ...]
    body: Any = None
    raw: bytes | None = None


BIG = "x" * 1100  # over max_payload_bytes=1024, under max_body_bytes=2048
HUGE = "y" * 3000  # over max_body_bytes
T = "/api/v1/tasks"
B = "/api/v1/tasks/batch"

BAD_INPUTS = [
    Bad("malformed json", T, 422, ("JSON",), raw=b'{"task_type": "echo", "payload": {'),
    Bad("body not an object", T, 422, (), raw=b'["echo"]'),
    Bad("payload as a list", T, 422, ("payload",), {"task_type": "echo", "payload": [1, 2]}),
    Bad("payload as a string", T, 422, ("payload",), {"task_type": "echo", "payload": "x"}),
    Bad("timeout not a number", T, 422, ("timeout_seconds",),
        {"task_type": "echo", "timeout_seconds": "abc"}),
    Bad("timeout negative", T, 422, ("timeout_seconds",),
        {"task_type": "echo", "timeout_seconds": -1}),
    Bad("max_retries not an int", T, 422, ("max_retries",),
        {"task_type": "echo", "max_retries": "three"}),
    Bad("max_retries too high", T, 422, ("max_retries",),
        {"task_type": "echo", "max_retries": 1000}),
    Bad("delay negative", T, 422, ("delay_seconds",), {"task_type": "echo", "delay_seconds": -5}),
    Bad("delay and run_at", T, 422, ("delay_seconds", "run_at"),
        {"task_type": "echo", "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"}),
    Bad("metadata not strings", T, 422, ("metadata",),
        {"task_type": "echo", "metadata": {"a": {"b": 1}}}),
    Bad("unknown priority", T, 422, ("priority", "urgent"),
        {"task_type": "echo", "priority": "urgent"}),
    Bad("priority out of range", T, 422, ("priority",), {"task_type": "echo", "priority": 3}),
    Bad("priority true", T, 422, ("priority",), {"task_type": "echo", "priority": True}),
    Bad("priority a float", T, 422, ("priority",), {"task_type": "echo", "priority": 1.5}),
    Bad("unregistered task type", T, 422, ("unknown task_type", "nosuchtype", "task-configs"),
        {"task_type": "nosuchtype"}),
    Bad("task type with bad characters", T, 422, ("task_type",), {"task_type": "bad type!"}),
    Bad("task type with a slash", T, 422, ("task_type",), {"task_type": "a/b"}),
    Bad("task type missing", T, 422, ("task_type",), {"payload": {}}),
    Bad("oversized payload", T, 422, ("payload", "1024"),
        {"task_type": "echo", "payload": {"blob": BIG}}),
    Bad("body over the limit", T, 413, ("2048",), {"task_type": "echo", "payload": {"b": HUGE}}),
    Bad("unknown field", T, 422, ("colour",), {"task_type": "echo", "colour": "red"}),
    Bad("batch with one unknown type", B, 422, ("nosuchtype",), {"tasks": [
        {"task_type": "echo"}, {"task_type": "echo"}, {"task_type": "nosuchtype"}]}),
    Bad("batch with one bad priority", B, 422, ("priority",), {"tasks": [
        {"task_type": "echo"}, {"task_type": "echo", "priority": "urgent"}]}),
    Bad("batch with one oversized payload", B, 422, ("tasks[1]", "payload"), {"tasks": [
        {"task_type": "echo"}, {"task_type": "echo", "payload": {"blob": BIG}}]}),
    Bad("batch with one bad type name", B, 422, ("task_type",), {"tasks": [
        {"task_type": "echo"}, {"task_type": "no spaces"}]}),
    Bad("batch with an unknown field", B, 422, ("colour",), {"tasks": [
        {"task_type": "echo"}, {"task_type": "echo", "colour": "red"}]}),
    Bad("batch not a list", B, 422, ("tasks",), {"tasks": {"task_type": "echo"}}),
]


async def check_bad_input(api: Api, bad: Bad) -> None:
    before = await api.stored()
    if bad.raw is not None:
        response = await api.http.post(
            bad.path, content=bad.raw, headers={"content-type": "application/json"})
    else:
        response = await api.http.post(bad.path, json=bad.body)
    message = error_of(response, bad.status)
    for word in bad.words:
        assert word in message, f"{bad.name}: {word!r} not in {message!r}"
    assert await api.stored() == before, f"{bad.name}: something was stored"
    assert len(await api.all_tasks()) == before


@pytest.fixture
async def small_api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(
        str(tmp_path / "conveyor.db"), max_payload_bytes=1024, max_body_bytes=2048,
    ) as built:
        yield built


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.name for b in BAD_INPUTS])
async def test_bad_input(small_api: Api, bad: Bad) -> None:
    await small_api.created(task_type="echo")  # one good task that must stay alone
    await check_bad_input(small_api, bad)
    assert await small_api.stored() == 1


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "sqlite"])
async def test_bad_input_on_every_database(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as url, serve(
        url, max_payload_bytes=1024, max_body_bytes=2048,
    ) as api:
        for bad in BAD_INPUTS:
            await check_bad_input(api, bad)
        assert await api.stored() == 0


async def test_streamed_body_over_the_limit_is_413(small_api: Api) -> None:
    """No Content-Length to check up front: the limit is enforced while reading."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"task_type": "echo", "payload": {"b": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}}'

    response = await small_api.http.post(
        T, content=chunks(), headers={"content-type": "application/json"})
    error_of(response, 413)
    assert await small_api.stored() == 0


async def test_payload_limit_counts_the_encoded_json(small_api: Api) -> None:
    fits = {"blob": "x" * 900}
    assert len(json.dumps(fits)) < 1024
    await small_api.created(task_type="echo", payload=fits)
