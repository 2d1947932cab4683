"""Helpers for the executor tests: a task as an executor receives it, an allowlist."""

from __future__ import annotations

import time

from conveyor.config import HttpExecutorSettings, Settings
from conveyor.models import Priority, Task, TaskStatus


def running_task(
    task_id: str, task_type: str, *, attempt: int = 1, timeout: float = 5
) -> Task:
    """A task as an executor receives it: PROCESSING, attempt ``attempt``."""
    now = time.time()
    return Task(
        id=task_id, task_type=task_type, priority=Priority.NORMAL, payload={"amount": 42},
        status=TaskStatus.PROCESSING, max_retries=3, timeout=timeout, created_at=now,
        run_at=now, attempt=attempt,
    )


def allowing(*hosts: str) -> Settings:
    """Settings whose outbound allowlist holds ``hosts``."""
    return Settings(http_executor=HttpExecutorSettings(allowed_hosts=hosts))
