"""The create routes served past the router (``api.fast.FastLane``): the same answers, error
bodies and route labels as a request the router serves, and every other request still goes
to the router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.observability.metrics import Metrics, add_metrics_route
from tests.integration.test_metrics import parse, value


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    parts = await build(load_settings(database_url=str(tmp_path / "c.db")), standalone=True)
    try:
        await parts.store.migrate()
        metrics = Metrics()
        app = create_app(parts.service, metrics=metrics)
        add_metrics_route(app, metrics)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor") as http:
            yield http
    finally:
        await parts.close()


async def test_creates_answer_and_are_labelled_as_routed_requests(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/v1/tasks", json={"task_type": "echo"})
    assert created.status_code == 201 and created.json()["status"] == "PENDING"
    batch = await client.post("/api/v1/tasks/batch", json={"tasks": [{"task_type": "echo"}]})
    assert batch.status_code == 201 and len(batch.json()["tasks"]) == 1
    listed = await client.get("/api/v1/tasks")  # same path, another method: the router's
    assert listed.status_code == 200 and len(listed.json()["tasks"]) == 2
    samples = parse((await client.get("/metrics")).text)
    requests = "conveyor_http_requests_total"
    assert value(samples, requests, method="POST", route="/api/v1/tasks", status="201") == 1
    assert value(samples, requests, method="POST", route="/api/v1/tasks/batch",
                 status="201") == 1


@pytest.mark.parametrize(("path", "body", "words"), [
    ("/api/v1/tasks", {"task_type": 5}, "task_type"),  # the body's validation
    ("/api/v1/tasks", {"task_type": "no-such-type"}, "unknown task_type"),  # the service's
    ("/api/v1/tasks/batch", {"tasks": []}, "tasks"),
])
async def test_refusals_carry_the_json_error_of_the_exception_handlers(
    client: httpx.AsyncClient, path: str, body: object, words: str,
) -> None:
    refused = await client.post(path, json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid"
    assert words in refused.json()["error"]["message"]
