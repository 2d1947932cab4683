"""Python clients of the REST API: ``Client`` (blocking) and ``AsyncClient``.

Both build the same requests and read the same answers through ``wire``; only the transport
(httpx sync or async) and the way they sleep while waiting differ.

    client = Client("http://127.0.0.1:8080")
    handle = client.submit("echo", {"x": 1})
    print(handle.result(timeout=10))     # {"x": 1}

The names are imported on first use (PEP 562), as ``conveyor``'s are: a worker imports
``conveyor.client.calls`` (what ``@app.task`` returns), and importing the clients with it would
load httpx into every worker before its first task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.lazy import exports

if TYPE_CHECKING:
    from conveyor.client.aio import AsyncClient, AsyncTaskHandle
    from conveyor.client.sync import Client, TaskHandle
    from conveyor.client.wire import ApiError, TaskFailed, TaskInfo, WaitTimeout

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncTaskHandle",
    "Client",
    "TaskFailed",
    "TaskHandle",
    "TaskInfo",
    "WaitTimeout",
]

_HOMES = {
    "ApiError": "conveyor.client.wire",
    "AsyncClient": "conveyor.client.aio",
    "AsyncTaskHandle": "conveyor.client.aio",
    "Client": "conveyor.client.sync",
    "TaskFailed": "conveyor.client.wire",
    "TaskHandle": "conveyor.client.sync",
    "TaskInfo": "conveyor.client.wire",
    "WaitTimeout": "conveyor.client.wire",
}


__getattr__ = exports(__name__, _HOMES, globals())
