"""``Client``: the blocking client of the REST API, and the handle of a task it submitted."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from conveyor.client.schedules import ScheduleCalls
from conveyor.client.wire import (
    Poll,
    Request,
    TaskInfo,
    audit_listing,
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


class Client:
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
        self._http = httpx.Client(base_url=url, headers=auth_headers(api_key), timeout=timeout)
        self.schedules: ScheduleCalls[Any] = ScheduleCalls(self.call)
        self.workflows: WorkflowCalls[Any] = WorkflowCalls(self.call)

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
            raise unreachable(self._http.base_url, exc) from exc
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
        poll = Poll(timeout)
        while not (info := self.get(task_id)).is_final:
            time.sleep(poll.next_delay(f"task {task_id}"))
        return info

    def list(
        self, status: str | None = None, task_type: str | None = None, page_size: int = 100,
        include: Sequence[str] = (),
    ) -> Iterator[TaskInfo]:
        """Summaries, newest first, following cursors; ``include=("payload", "result")`` adds
        those fields (the server then sends fewer rows per page, within its byte budget)."""
        pages = self._follow(
            lambda cursor: listing(status, task_type, page_size, cursor, include), "tasks"
        )
        yield from (TaskInfo.from_json(t) for t in pages)

    def _follow(self, page: Callable[[str | None], Request], rows: str) -> Iterator[Any]:
        """The ``rows`` of every page, from the first (no cursor) to the last."""
        cursor = None
        while True:
            found = self.call(page(cursor))
            yield from found[rows]
            if not (cursor := found["next_cursor"]):
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

    def configs(self) -> builtins.list[dict[str, Any]]:
        """Every task config (admin: ``put_config`` / ``delete_config`` change them)."""
        found: builtins.list[dict[str, Any]] = self.call(
            Request("GET", "/api/v1/task-configs"))["configs"]
        return found

    def get_config(self, task_type: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call(Request("GET", f"/api/v1/task-configs/{task_type}"))
        return found

    def put_config(self, task_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = self.call(
            Request("PUT", f"/api/v1/task-configs/{task_type}", dict(config)))
        return stored

    def delete_config(self, task_type: str) -> None:
        self.call(Request("DELETE", f"/api/v1/task-configs/{task_type}"))

    def audit(
        self, action: str | None = None, target: str | None = None, key_id: str | None = None,
        since: str | None = None, until: str | None = None, page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Audit rows of the key's tenant (admin), newest first, following cursors;
        ``since`` / ``until`` are ISO 8601 times (UTC without an offset)."""
        filters = {"action": action, "target": target, "key_id": key_id, "since": since,
                   "until": until}
        return self._follow(lambda cursor: audit_listing(filters, page_size, cursor), "entries")


class TaskHandle:
    """A submitted task; ``result()`` waits for it and returns its result or raises."""

    def __init__(self, client: Client, info: TaskInfo) -> None:
        self.client = client
        self.info = info
        self.id = info.task_id

    def result(self, timeout: float | None = 60.0) -> Any:
        self.info = self.client.wait(self.id, timeout)
        return settled(self.info)
