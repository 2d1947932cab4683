"""Python clients of the REST API: ``Client`` (blocking) and ``AsyncClient``.

Both build the same requests and read the same answers through the pure helpers below; only
the transport (httpx sync or async) and the way they sleep while waiting differ.

    client = Client("http://127.0.0.1:8080")
    handle = client.submit("echo", {"x": 1})
    print(handle.result(timeout=10))     # {"x": 1}
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import httpx

from conveyor.errors import ConveyorError

FINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT", "CANCELLED"})


class ApiError(ConveyorError):
    """The server answered with an error; ``status`` and ``code`` say which."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class TaskFailed(ConveyorError):
    """Waited for a result, but the task ended FAILED, TIMEOUT or CANCELLED."""

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(f"task {task.task_id} ended {task.status}: {task.error or ''}".strip())
        self.task = task


class WaitTimeout(ConveyorError):
    """The task did not reach a final state within the wait."""


@dataclass(frozen=True, slots=True)
class TaskInfo:
    task_id: str
    task_type: str
    status: str
    priority: str
    payload: dict[str, Any]
    metadata: dict[str, str]
    attempt: int
    retry_count: int
    max_retries: int
    timeout_seconds: float
    result: Any = None
    error: str | None = None
    worker_id: str | None = None
    idempotency_key: str | None = None
    created_at: str | None = None
    run_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    created: bool | None = None
    cancel_requested: bool | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None


def _task_body(
    task_type: str, payload: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    body = {"task_type": task_type, "payload": dict(payload or {})}
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def create(task_type: str, payload: Mapping[str, Any] | None, **options: Any) -> Request:
    return Request("POST", "/api/v1/tasks", _task_body(task_type, payload, options))


def create_many(tasks: Sequence[Mapping[str, Any]]) -> Request:
    return Request("POST", "/api/v1/tasks/batch", {"tasks": list(tasks)})


def listing(status: str | None, task_type: str | None, limit: int, cursor: str | None) -> Request:
    params = {"status": status, "type": task_type, "limit": limit, "cursor": cursor}
    return Request(
        "GET", "/api/v1/tasks", params={k: v for k, v in params.items() if v is not None}
    )


def read(response: httpx.Response) -> Any:
    """The JSON body, or ``ApiError`` carrying the server's own message."""
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise ApiError(response.status_code, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(response.status_code, "http_error", response.text[:500]) from None
    return None if response.status_code == 204 else response.json()


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _settled(info: TaskInfo) -> Any:
    if info.status == "SUCCESS":
        return info.result
    raise TaskFailed(info)


class _Poll:
    """Polling schedule for ``wait``: starts fast (most tasks finish in milliseconds) and
    backs off to half a second."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.delay = 0.01

    def next_delay(self, task_id: str) -> float:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeout(f"task {task_id} is not finished yet")
        delay, self.delay = self.delay, min(0.5, self.delay * 1.5)
        return delay


class Client:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._http = httpx.Client(base_url=url, headers=_headers(api_key), timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, request: Request) -> Any:
        try:
            response = self._http.request(
                request.method, request.path, json=request.json, params=request.params
            )
        except httpx.TransportError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self._http.base_url}: {exc}") from exc
        return read(response)

    def submit(
        self, task_type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> TaskHandle:
        return TaskHandle(
            self, TaskInfo.from_json(self.call(create(task_type, payload, **options)))
        )

    def submit_many(self, tasks: Sequence[Mapping[str, Any]]) -> builtins.list[TaskInfo]:
        return [TaskInfo.from_json(t) for t in self.call(create_many(tasks))["tasks"]]

    def get(self, task_id: str) -> TaskInfo:
        return TaskInfo.from_json(self.call(Request("GET", f"/api/v1/tasks/{task_id}")))

    def wait(self, task_id: str, timeout: float | None = 60.0) -> TaskInfo:
        poll = _Poll(timeout)
        while not (info := self.get(task_id)).is_final:
            time.sleep(poll.next_delay(task_id))
        return info

    def list(
        self, status: str | None = None, task_type: str | None = None, page_size: int = 100
    ) -> Iterator[TaskInfo]:
        cursor = None
        while True:
            page = self.call(listing(status, task_type, page_size, cursor))
            yield from (TaskInfo.from_json(t) for t in page["tasks"])
            if not (cursor := page["next_cursor"]):
                return

    def cancel(self, task_id: str) -> TaskInfo:
        return TaskInfo.from_json(self.call(Request("POST", f"/api/v1/tasks/{task_id}/cancel")))

    def retry(self, task_id: str) -> TaskInfo:
        return TaskInfo.from_json(self.call(Request("POST", f"/api/v1/tasks/{task_id}/retry")))

    def logs(self, task_id: str) -> builtins.list[dict[str, Any]]:
        logs: builtins.list[dict[str, Any]] = self.call(
            Request("GET", f"/api/v1/tasks/{task_id}/logs")
        )["logs"]
        return logs

    def workers(self) -> builtins.list[dict[str, Any]]:
        found: builtins.list[dict[str, Any]] = self.call(Request("GET", "/api/v1/workers"))[
            "workers"
        ]
        return found

    def queues(self) -> dict[str, Any]:
        state: dict[str, Any] = self.call(Request("GET", "/api/v1/queues"))
        return state

    def scheduler_status(self) -> dict[str, Any]:
        state: dict[str, Any] = self.call(Request("GET", "/api/v1/scheduler"))
        return state

    def stats(self, window: float = 300) -> dict[str, Any]:
        """Counts by state and type, and rates over the last ``window`` seconds."""
        found: dict[str, Any] = self.call(
            Request("GET", "/api/v1/stats", params={"window": window})
        )
        return found

    def pause(self, name: str) -> dict[str, Any]:
        """Pause a priority (high, normal, low) or a task type."""
        state: dict[str, Any] = self.call(Request("POST", f"/api/v1/queues/{name}/pause"))
        return state

    def resume(self, name: str) -> dict[str, Any]:
        state: dict[str, Any] = self.call(Request("POST", f"/api/v1/queues/{name}/resume"))
        return state


class AsyncClient:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=url, headers=_headers(api_key), timeout=timeout)

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
            raise ApiError(0, "unreachable", f"cannot reach {self._http.base_url}: {exc}") from exc
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
        poll = _Poll(timeout)
        info = await self.get(task_id)
        while not info.is_final:
            await asyncio.sleep(poll.next_delay(task_id))
            info = await self.get(task_id)
        return info

    async def list(
        self, status: str | None = None, task_type: str | None = None, page_size: int = 100
    ) -> AsyncIterator[TaskInfo]:
        cursor = None
        while True:
            page = await self.call(listing(status, task_type, page_size, cursor))
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


class TaskHandle:
    """A submitted task; ``result()`` waits for it and returns its result or raises."""

    def __init__(self, client: Client, info: TaskInfo) -> None:
        self.client = client
        self.info = info
        self.id = info.task_id

    def result(self, timeout: float | None = 60.0) -> Any:
        self.info = self.client.wait(self.id, timeout)
        return _settled(self.info)


class AsyncTaskHandle:
    def __init__(self, client: AsyncClient, info: TaskInfo) -> None:
        self.client = client
        self.info = info
        self.id = info.task_id

    async def result(self, timeout: float | None = 60.0) -> Any:
        self.info = await self.client.wait(self.id, timeout)
        return _settled(self.info)

    def __await__(self) -> Any:
        return self.result().__await__()
