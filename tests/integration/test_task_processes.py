"""The task-process pool with real spawned processes: a stopped call leaves nothing running.

``ProcessPool`` is driven directly (the worker-level view is ``test_stopping.py``): a cancelled
call kills the function's whole process group, a task process dies with its worker, a crashed
process is replaced, and the pool never holds more processes than its size.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.errors import RetryableError
from conveyor.executors.functions import FunctionRef
from conveyor.executors.subprocess_pool import ProcessPool
from conveyor.models import Task
from tests.support.executors import running_task

MODULE = "tests.support.stopping"
ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that does not reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def task(**payload: object) -> Task:
    return replace(running_task("01TASKPROCESS", "plain"), payload=payload)


def read_pids(pidfile: Path) -> tuple[int, int] | None:
    words = pidfile.read_text().split() if pidfile.exists() else []
    return (int(words[0]), int(words[1])) if len(words) == 2 else None


async def started(pidfile: Path) -> tuple[int, int]:
    """The pids ``start_sleeper`` wrote: its task process and the grandchild it started."""
    deadline = time.monotonic() + 20
    while (pids := read_pids(pidfile)) is None:
        assert time.monotonic() < deadline, "the function never started"
        await asyncio.sleep(0.02)
    return pids


async def gone(*pids: int, within: float) -> None:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if alive(p)]
        await asyncio.sleep(0.05)


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    built = ProcessPool(2, [MODULE])
    try:
        yield built
    finally:
        await built.close()


async def test_a_cancelled_call_kills_the_process_group(pool: ProcessPool, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    running = asyncio.create_task(
        pool.run(FunctionRef(MODULE, "start_sleeper"), task(pidfile=str(pidfile)))
    )
    own, grandchild = await started(pidfile)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not alive(own)  # gone by the time the call returned
    await gone(grandchild, within=2)  # the shell command it started went with it
    assert pool.replaced == 1
    # The next call gets a fresh process.
    assert await pool.run(FunctionRef(MODULE, "whoami"), task()) not in (own, grandchild)


async def test_a_crashed_process_fails_the_call_and_is_replaced(pool: ProcessPool) -> None:
    with pytest.raises(RetryableError, match="exit code 3"):
        await pool.run(FunctionRef(MODULE, "crash"), task(code=3))
    assert pool.replaced == 1
    assert isinstance(await pool.run(FunctionRef(MODULE, "whoami"), task()), int)


async def test_the_pool_holds_at_most_its_size(pool: ProcessPool) -> None:
    calls = [pool.run(FunctionRef(MODULE, "whoami"), task(delay=0.3)) for _ in range(6)]
    pids = await asyncio.gather(*calls)
    assert len(set(pids)) <= 2
    assert os.getpid() not in pids


WORKER = """
    import asyncio, sys
    from dataclasses import replace
    from conveyor.executors.functions import FunctionRef
    from conveyor.executors.subprocess_pool import ProcessPool
    from tests.support.executors import running_task

    async def main() -> None:
        pool = ProcessPool(1)
        call = replace(running_task("t", "plain"), payload={"pidfile": sys.argv[1]})
        await pool.run(FunctionRef("tests.support.stopping", "start_sleeper"), call)

    if __name__ == "__main__":
        asyncio.run(main())
"""


async def test_a_task_process_dies_with_its_worker(tmp_path: Path) -> None:
    """kill -9 of the worker leaves no task running: the task process notices and kills its
    group, so the task cannot run on beside the rerun that recovery will start."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    pidfile = tmp_path / "pids"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(pidfile), env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        own, grandchild = await started(pidfile)
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 5)
        await gone(own, grandchild, within=3)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
