"""Python clients of the REST API: ``Client`` (blocking) and ``AsyncClient``.

Both build the same requests and read the same answers through ``wire``; only the transport
(httpx sync or async) and the way they sleep while waiting differ.

    client = Client("http://127.0.0.1:8080")
    handle = client.submit("echo", {"x": 1})
    print(handle.result(timeout=10))     # {"x": 1}
"""

from __future__ import annotations

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
