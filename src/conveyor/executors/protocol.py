"""The executor contract: run one attempt of a task and return its result.

An executor returns the JSON-able result on success and raises on failure: ``PermanentError``
for a failure that retrying cannot fix, anything else (``RetryableError`` included) for one
that may pass next time. Timeouts and cancellation are the worker's job: it runs ``execute``
in an asyncio task, so an executor only has to be cancellation-safe (let ``CancelledError``
through and release what it holds). An executor may also define ``async def start()``, called
once as the worker starts (the python executor starts a task process there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from conveyor.models import Task


class Executor(Protocol):
    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        """Run ``task`` with the executor settings of its type (``task_config.executor_config``)."""

    async def close(self) -> None:
        """Release pooled connections when the worker stops."""
