"""Stopped means stopped, as a user meets it: ``conveyor standalone --app`` with a plain
function that overruns its timeout or is cancelled writes nothing afterwards, and the task
process that ran it is gone; stopping the server leaves no task process behind.

Before task processes, the function ran on in the worker's thread pool and wrote its file
seconds after TIMEOUT / CANCELLED was recorded.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_standalone import Standalone, standalone
from tests.integration.test_task_processes import alive

pytestmark = pytest.mark.slow

MODULE = '''
import os
import time

from conveyor import Conveyor

app = Conveyor()


@app.task("late_write", max_retries=0)
def late_write(path: str, seconds: float) -> None:
    with open(path + ".pid", "w") as out:
        out.write(str(os.getpid()))
    time.sleep(seconds)
    with open(path, "w") as out:
        out.write("written after the sleep")
'''


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Standalone]:
    name = f"stopapp_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    with standalone(
        tmp_path, tmp_path / "conveyor.db", env={"PYTHONPATH": str(tmp_path)},
        args=("--app", f"{name}:app"),
    ) as running:
        # The worker starts a task process as it starts; once this ran, one is certainly warm
        # and the 1 s timeouts below are spent in the function, not in a process start.
        warm_up = submit(running, tmp_path / "warm-up", seconds=0)
        assert final_status(running, warm_up) == "SUCCESS"
        yield running


def submit(server: Standalone, path: Path, seconds: float = 3, **options: Any) -> str:
    body = {"task_type": "late_write", "payload": {"path": str(path), "seconds": seconds},
            **options}
    response = httpx.post(f"{server.url}/api/v1/tasks", json=body, timeout=10)
    assert response.status_code == 201, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)
    return found


def final_status(server: Standalone, task_id: str) -> str:
    def settled() -> str | None:
        status: str = httpx.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()["status"]
        return status if status not in ("PENDING", "PROCESSING") else None

    status: str = wait_for(settled)
    return status


def task_pid(path: Path) -> int:
    pidfile = path.with_name(path.name + ".pid")
    return int(wait_for(lambda: pidfile.exists() and pidfile.read_text()))


def test_an_overrunning_plain_function_is_stopped(server: Standalone, tmp_path: Path) -> None:
    target = tmp_path / "timed-out"
    task_id = submit(server, target, timeout_seconds=1)
    pid = task_pid(target)
    assert final_status(server, task_id) == "TIMEOUT"
    assert not alive(pid)  # the task process was gone before TIMEOUT was recorded
    time.sleep(3)  # past the moment the function would have written its file
    assert not target.exists()


def test_a_cancelled_plain_function_is_stopped(server: Standalone, tmp_path: Path) -> None:
    target = tmp_path / "cancelled"
    task_id = submit(server, target, timeout_seconds=60)
    pid = task_pid(target)
    cancel = httpx.post(f"{server.url}/api/v1/tasks/{task_id}/cancel", timeout=10)
    assert cancel.status_code == 202, cancel.text
    assert final_status(server, task_id) == "CANCELLED"
    assert not alive(pid)
    time.sleep(3)
    assert not target.exists()


def test_stopping_the_server_leaves_no_task_process(server: Standalone, tmp_path: Path) -> None:
    target = tmp_path / "running-at-stop"
    submit(server, target, timeout_seconds=60)
    pid = task_pid(target)
    assert alive(pid)
    server.stop()
    wait_for(lambda: not alive(pid), timeout=5)
    assert not target.exists()
