"""The example plug-in on its own: run with `pytest examples/plugin` once it is installed."""

from __future__ import annotations

import time

import pytest
from conveyor_example_plugin import ReverseExecutor

from conveyor.config import Settings
from conveyor.errors import PermanentError
from conveyor.models import Priority, Task, TaskStatus


def make_task(payload: dict[str, object]) -> Task:
    now = time.time()
    return Task(
        id="01PLUGIN",
        task_type="reverse",
        priority=Priority.NORMAL,
        payload=payload,
        status=TaskStatus.PROCESSING,
        max_retries=0,
        timeout=5,
        created_at=now,
        run_at=now,
        attempt=1,
    )


async def test_reverses_the_text() -> None:
    executor = ReverseExecutor(Settings())
    assert await executor.execute(make_task({"text": "abc"}), {}) == {
        "reversed": "cba",
        "attempt": 1,
    }
    shouted = await executor.execute(make_task({"text": "abc"}), {"upper": True})
    assert shouted["reversed"] == "CBA"
    await executor.close()


async def test_bad_payload_is_permanent() -> None:
    with pytest.raises(PermanentError):
        await ReverseExecutor(Settings()).execute(make_task({"text": 3}), {})


async def test_a_configured_token_must_match() -> None:
    executor = ReverseExecutor(Settings())
    config = {"token": "shared"}
    done = await executor.execute(make_task({"text": "ab", "token": "shared"}), config)
    assert done["reversed"] == "ba"
    with pytest.raises(PermanentError, match="token"):
        await executor.execute(make_task({"text": "ab", "token": "other"}), config)
