"""Start-up cost: a task process started under the ``conveyor`` command does not re-import
the CLI, a process that serves no API does not import FastAPI, and a worker warms its task
process only once it is quiet.

multiprocessing's ``spawn`` re-imports the parent's ``__main__`` script in every child; the
console script imports the whole CLI, which was most of a task process's start-up and so of
the wait of a worker's first plain task. ``conveyor.cli.main`` marks the script as holding no
task code; a user's own ``python app.py`` is still re-imported (its functions live there).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor import builtin
from conveyor.executors import python
from conveyor.executors.python import PythonExecutor
from tests.support.executors import running_task

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio
import dataclasses
import sys

from conveyor.cli import _main_holds_no_tasks
from conveyor.executors.functions import FunctionRef
from conveyor.executors.subprocess_pool import ProcessPool
from tests.support.executors import running_task

if __name__ == "__main__":
    if sys.argv[1] == "conveyor":
        _main_holds_no_tasks()

    async def ask() -> None:
        pool = ProcessPool(1)
        task = dataclasses.replace(running_task("01STARTUP", "plain"),
                                   payload={"name": "conveyor.cli"})
        try:
            print(await pool.run(FunctionRef("tests.support.children", "imported"), task))
        finally:
            await pool.close()

    asyncio.run(ask())
"""


@pytest.mark.parametrize(("kind", "reimported"), [("conveyor", False), ("app", True)])
def test_a_task_process_imports_the_cli_only_for_a_script_that_may_hold_tasks(
    tmp_path: Path, kind: str, reimported: bool
) -> None:
    script = tmp_path / "main_script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), kind], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(reimported)]


def test_a_worker_or_scheduler_process_does_not_import_fastapi() -> None:
    """The API (FastAPI, routes, console) was a third of a worker's import time; it is
    imported only by a process that serves it."""
    probe = "import sys, conveyor.cli, conveyor.process; print('fastapi' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


async def test_the_task_process_is_warmed_once_the_worker_is_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started at once, it would import beside the worker's start and its first tasks on the
    same cores; while calls keep coming none starts, a moment after they stop one does."""
    monkeypatch.setattr(python, "QUIET", 0.2)
    executor = PythonExecutor(builtin.app.registrations, processes=1)  # noop runs in one
    echo = running_task("01WARMQUIET", "echo")
    await executor.start()
    try:
        for _ in range(12):  # busy for twice QUIET and more: no process yet
            assert await executor.execute(echo, {}) == echo.payload
            await asyncio.sleep(0.05)
        assert multiprocessing.active_children() == []
        deadline = time.monotonic() + 30
        while not multiprocessing.active_children():
            assert time.monotonic() < deadline, "no task process was warmed once quiet"
            await asyncio.sleep(0.05)
    finally:
        await executor.close()
    assert multiprocessing.active_children() == []
