"""Start-up cost: a task process started under the ``conveyor`` command does not re-import
the CLI, and a process that serves no API does not import FastAPI.

multiprocessing's ``spawn`` re-imports the parent's ``__main__`` script in every child; the
console script imports the whole CLI, which was most of a task process's start-up and so of
the wait of a worker's first plain task. ``conveyor.cli.main`` marks the script as holding no
task code; a user's own ``python app.py`` is still re-imported (its functions live there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
