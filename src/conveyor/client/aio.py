"""``AsyncClient``: the asyncio client of the REST API, and the handle of a task it submitted."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import Any

import httpx

from conveyor.client.schedules import ScheduleCalls
from conveyor.client.wire import (
    Poll,
    Request,
    TaskInfo,
    auth_headers,
    create,
    create_many,
    listing,
    read,
    settled,
    target,
    unreachable,
)
from conveyor.client.workflows import WorkflowCalls


class AsyncClient:
    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """``url`` and ``api_key`` default to ``CONVEYOR_URL`` / ``CONVEYOR_API_KEY``, then to
        the local standalone server without a key."""
        url, api_key = target(url, api_key)
        self._http = httpx.AsyncClient(base_url=url, headers=auth_headers(api_key), timeout=timeout)
        self.schedules: ScheduleCalls[Coroutine[Any, Any, Any]] = ScheduleCalls(self.call)
        self.workflows: WorkflowCalls[Coroutine[Any, Any, Any]] = WorkflowCalls(self.call)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, request: Request) -> Any:
        try:
            response = await self._http.request(
                request.method, request.path, json=request.json, params=request.params
            )
        except httpx.TransportError as exc:
            raise unreachable(self._http.base_url, exc) from exc
        return read(response)

    async def submit(
        self, task_type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncTaskHandle:
        data = await self.call(create(task_type, payload, **options))
        return AsyncTaskHandle(self, TaskInfo.from_json(data))

    async def submit_many(self, tasks: Sequence[Mapping[str, Any]]) -> builtins.list[TaskInfo]:
        return [TaskInfo.from_json(t) for t in (await self.call(create_many(tasks)))["tasks"]]

    async def get(self, task_id: str) -> TaskInfo:
        return TaskInfo.from_json(await self.call(Request("GET", f"/api/v1/tasks/{task_id}")))

    async def wait(self, task_id: str, timeout: float | None = 60.0) -> TaskInfo:
        poll = Poll(timeout)
        info = await self.get(task_id)
        while not info.is_final:
            await asyncio.sleep(poll.next_delay(f"task {task_id}"))
            info = await self.get(task_id)
        return info

    async def list(
        self, status: str | None = None, task_type: str | None = None, page_size: int = 100,
        include: Sequence[str] = (),
    ) -> AsyncIterator[TaskInfo]:
        """Summaries, newest first, following cursors; ``include=("payload", "result")`` adds
        those fields (the server then sends fewer rows per page, within its byte budget)."""
        cursor = None
        while True:
            page = await self.call(listing(status, task_type, page_size, cursor, include))
            for t in page["tasks"]:
                yield TaskInfo.from_json(t)
            if not (cursor := page["next_cursor"]):
                return

    async def cancel(self, task_id: str) -> TaskInfo:
        data = await self.call(Request("POST", f"/api/v1/tasks/{task_id}/cancel"))
        return TaskInfo.from_json(data)

    async def retry(self, task_id: str) -> TaskInfo:
        data = await self.call(Request("POST", f"/api/v1/tasks/{task_id}/retry"))
        return TaskInfo.from_json(data)

    async def logs(self, task_id: str) -> builtins.list[dict[str, Any]]:
        data = await self.call(Request("GET", f"/api/v1/tasks/{task_id}/logs"))
        logs: builtins.list[dict[str, Any]] = data["logs"]
        return logs


class AsyncTaskHandle:
    def __init__(self, client: AsyncClient, info: TaskInfo) -> None:
        self.client = client
        self.info = info
        self.id = info.task_id

    async def result(self, timeout: float | None = 60.0) -> Any:
        self.info = await self.client.wait(self.id, timeout)
        return settled(self.info)

    def __await__(self) -> Any:
        return self.result().__await__()
