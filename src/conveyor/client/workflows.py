"""Workflow calls of the clients: ``client.workflows.submit(...)`` on ``Client`` (answers) and
``AsyncClient`` (awaitables of answers), built like ``client.schedules``: each method only
builds the request and hands it to the client's ``call``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from conveyor.client.wire import Request, create

T = TypeVar("T")
_BASE = "/api/v1/workflows"


class WorkflowCalls(Generic[T]):
    """Each answer is the API's JSON (see ``/docs``): ``submit()`` gives ``{"workflow_id",
    "nodes": {node: task id}}``, ``get()`` the state and each node's status."""

    def __init__(self, call: Callable[[Request], T]) -> None:
        self._call = call

    def _path(self, workflow_id: str, action: str = "") -> str:
        return f"{_BASE}/{quote(workflow_id, safe='')}{action}"

    def submit(self, name: str, tasks: Mapping[str, Mapping[str, Any]]) -> T:
        """``tasks``: node name → a task create body plus ``after`` (node names)."""
        body = {"name": name, "tasks": {n: dict(t) for n, t in tasks.items()}}
        return self._call(Request("POST", _BASE, body))

    def shard(
        self, task_type: str, payload: Mapping[str, Any] | None, shards: int,
        then: Mapping[str, Any] | None = None, **options: Any,
    ) -> T:
        """``shards`` tasks of ``task_type`` as one workflow, each with ``shard_index`` and
        ``shard_total`` in its payload; ``then`` (a task create body) runs after all of them
        with their results under ``results``. Answers like ``submit()``."""
        return self._fan(task_type, payload, then, options, shards=shards)

    def broadcast(
        self, task_type: str, payload: Mapping[str, Any] | None = None,
        then: Mapping[str, Any] | None = None, **options: Any,
    ) -> T:
        """One copy of the task on every live worker that runs ``task_type`` now, as one
        workflow (each copy pinned to its worker); ``then`` as for ``shard()``."""
        return self._fan(task_type, payload, then, options, broadcast=True)

    def _fan(
        self, task_type: str, payload: Mapping[str, Any] | None,
        then: Mapping[str, Any] | None, options: Mapping[str, Any], **how: Any,
    ) -> T:
        fan_in = None if then is None else dict(then)
        return self._call(create(task_type, payload, **options, **how, then=fan_in))

    def list(self, name: str | None = None, limit: int = 50, cursor: str | None = None) -> T:
        params: dict[str, Any] = {"limit": limit}
        if name is not None:
            params["name"] = name
        if cursor is not None:
            params["cursor"] = cursor
        return self._call(Request("GET", _BASE, params=params))

    def get(self, workflow_id: str) -> T:
        return self._call(Request("GET", self._path(workflow_id)))

    def cancel(self, workflow_id: str) -> T:
        return self._call(Request("POST", self._path(workflow_id, "/cancel")))

    def retry(self, workflow_id: str) -> T:
        return self._call(Request("POST", self._path(workflow_id, "/retry")))
