"""Task lists over large payloads, through a real uvicorn serving the real app.

A list must not read, hold or send every row's payload: by default it answers summaries, with
``include=payload,result`` it sends those fields only within ``max_list_bytes`` (the page then
ends early with a cursor) and the answer is streamed row by row. Each test runs the API role
of a ``Process`` on a free port over a fresh database (SQLite, MariaDB, PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conveyor.bootstrap import build
from conveyor.client import AsyncClient
from conveyor.config import load_settings
from conveyor.process import Process
from tests.support.databases import BACKENDS, fresh_database
from tests.support.processes import free_port

ROW = 1_000_000  # payload text per task: about 1 MB, inside the default 1 MiB payload limit
BUDGET = 3_000_000  # max_list_bytes in these tests: two such payloads, not three


@asynccontextmanager
async def serving(database_url: str, budget: int = BUDGET) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    settings = load_settings(database_url=database_url, port=port, max_list_bytes=budget)
    parts = await build(settings, standalone=True)
    process = Process(settings, api=True, scheduler=False, worker=False, standalone=True,
                      parts=parts)
    try:
        await process.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http
    finally:
        await process.stop()
        await parts.close()


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with fresh_database(request.param, tmp_path) as url, serving(url) as http:
        yield http


async def create_big(http: httpx.AsyncClient, count: int, size: int = ROW) -> list[str]:
    """``count`` tasks whose payloads are ``size`` characters each (marked with their index),
    created in batches that stay inside the body limit."""
    ids: list[str] = []
    for start in range(0, count, 10):
        tasks = [
            {"task_type": "echo", "payload": {"i": i, "blob": "x" * size}}
            for i in range(start, min(count, start + 10))
        ]
        response = await http.post("/api/v1/tasks/batch", json={"tasks": tasks})
        assert response.status_code == 201, response.text
        ids += [t["task_id"] for t in response.json()["tasks"]]
    return ids


async def pages(http: httpx.AsyncClient, **params: Any) -> AsyncIterator[tuple[int, Any]]:
    """Every page of a list, following cursors, with the size of its body."""
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/api/v1/tasks", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        yield len(response.content), body
        if not (cursor := body["next_cursor"]):
            return


async def test_a_list_leaves_payload_and_result_out_by_default(
    api: httpx.AsyncClient,
) -> None:
    ids = await create_big(api, 5)
    response = await api.get("/api/v1/tasks", params={"limit": 150})
    assert response.status_code == 200
    rows = response.json()["tasks"]
    assert sorted(r["task_id"] for r in rows) == sorted(ids)
    assert all("payload" not in r and "result" not in r for r in rows)
    assert {r["status"] for r in rows} == {"PENDING"}
    assert len(response.content) < 10_000  # summaries: a few hundred bytes a row


async def test_included_fields_come_within_the_budget_and_cursors_reach_every_row(
    api: httpx.AsyncClient,
) -> None:
    ids = await create_big(api, 50)
    seen: list[str] = []
    count = 0
    async for size, body in pages(api, limit=150, include="payload,result"):
        count += 1
        rows = body["tasks"]
        assert size < BUDGET + ROW  # the memory bound: the budget plus at most one row
        assert 1 <= len(rows) <= 2
        for row in rows:
            assert row["result"] is None
            assert len(row["payload"]["blob"]) == ROW
            assert row["payload"]["i"] == ids.index(row["task_id"])
        seen += [r["task_id"] for r in rows]
    assert count == 25
    assert seen == sorted(ids, reverse=True)  # every row once, newest first


async def test_a_row_over_the_budget_comes_alone(tmp_path: Path) -> None:
    async with serving(str(tmp_path / "c.db"), budget=1024) as http:
        ids = await create_big(http, 3, size=5000)
        listed = [b async for _, b in pages(http, limit=10, include="payload")]
    assert [len(b["tasks"]) for b in listed] == [1, 1, 1]
    assert [b["tasks"][0]["task_id"] for b in listed] == sorted(ids, reverse=True)
    assert all("result" not in b["tasks"][0] for b in listed)


async def test_an_unknown_include_is_refused_naming_the_field(tmp_path: Path) -> None:
    async with serving(str(tmp_path / "c.db")) as http:
        response = await http.get("/api/v1/tasks", params={"include": "payload,secrets"})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "include" in message and "secrets" in message


async def test_the_list_is_streamed_row_by_row(tmp_path: Path) -> None:
    async with serving(str(tmp_path / "c.db"), budget=64 * 1_048_576) as http:
        await create_big(http, 20)
        async with http.stream(
            "GET", "/api/v1/tasks", params={"limit": 150, "include": "payload"}
        ) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            assert response.headers["transfer-encoding"] == "chunked"
            chunks = [chunk async for chunk in response.aiter_raw()]
    whole = b"".join(chunks)
    assert chunks[0].startswith(b'{"tasks":[') and len(chunks[0]) < len(whole) / 2
    assert len(orjson.loads(whole)["tasks"]) == 20


async def test_the_python_client_lists_summaries_and_asks_for_what_it_needs(
    tmp_path: Path,
) -> None:
    async with serving(str(tmp_path / "c.db")) as http:
        ids = await create_big(http, 4, size=10)
        async with AsyncClient(str(http.base_url)) as client:
            bare = [t async for t in client.list(page_size=3)]
            full = [t async for t in client.list(page_size=3, include=("payload",))]
    assert [t.task_id for t in bare] == sorted(ids, reverse=True)
    assert all(t.payload is None for t in bare)
    assert [t.task_id for t in full] == [t.task_id for t in bare]
    assert [t.payload and t.payload["i"] for t in full] == [ids.index(t.task_id) for t in full]
