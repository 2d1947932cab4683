"""Task types every Conveyor ships, so a fresh install is useful at once and retries,
timeouts and cancellation can be tried from the shell."""

from __future__ import annotations

import asyncio
from typing import Any

from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.python import current_task
from conveyor.registrations import Conveyor

app = Conveyor()


@app.task("echo", timeout=30)
async def echo(**payload: Any) -> dict[str, Any]:
    """Return the payload unchanged."""
    return payload


@app.task("sleep", timeout=3600)
async def sleep(seconds: float = 1.0, **_: Any) -> dict[str, float]:
    """Wait ``seconds``; cancellable and subject to the task timeout."""
    await asyncio.sleep(float(seconds))
    return {"slept": float(seconds)}


@app.task("fail", max_retries=3)
async def fail(times: int | None = None, permanent: bool = False, **_: Any) -> dict[str, int]:
    """Fail the first ``times`` attempts (every attempt when omitted), then succeed.
    ``permanent`` fails without retrying."""
    attempt = current_task().attempt
    if permanent:
        raise PermanentError("asked to fail permanently")
    if times is None or attempt <= int(times):
        raise RetryableError(f"asked to fail (attempt {attempt})")
    return {"succeeded_on_attempt": attempt}


@app.task("noop", timeout=30)
def noop(**_: Any) -> None:
    """Do nothing, in a task process (for benchmarks of plain functions)."""
