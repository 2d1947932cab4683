"""``Deferred``: an executor built by its first task instead of at the worker's start.

The HTTP and gRPC executors import httpx (and gRPC, when used), a good part of a worker's
import time; a worker that runs only python tasks would pay it before its first task and never
use them. Their settings are still checked at start: the webhook listener, which every process
builds, parses the same allowlist (``http_executor.allowed_hosts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conveyor.executors.protocol import Executor
from conveyor.models import Task


class Deferred:
    def __init__(self, build: Callable[[], Executor]) -> None:
        self._build = build
        self._built: Executor | None = None

    def _executor(self) -> Executor:
        if self._built is None:
            self._built = self._build()
        return self._built

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        return await self._executor().execute(task, config)

    async def close(self) -> None:
        if self._built is not None:
            await self._built.close()
