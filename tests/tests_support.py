"""Small helpers shared by tests that start real servers and processes."""

from __future__ import annotations

import shutil
import socket
import sys
import time
from pathlib import Path

from conveyor.config import HttpExecutorSettings, Settings
from conveyor.models import Priority, Task, TaskStatus


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def conveyor_command() -> str:
    """The ``conveyor`` console script of the interpreter running the tests."""
    found = Path(sys.executable).parent / "conveyor"
    if found.exists():
        return str(found)
    which = shutil.which("conveyor")
    assert which, "the conveyor console script is not installed"
    return which


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
