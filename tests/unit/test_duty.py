"""The duty loop: a backend that is down is waited out; anything else is a bug that stops it."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.duty import Duty, Supervisor
from conveyor.errors import BackendUnavailable


class Flaky(Duty):
    """Fails its first passes with ``error``, then counts successful passes."""

    name = "flaky"

    def __init__(self, error: BaseException, failures: int) -> None:
        super().__init__(interval=0.001)
        self.error, self.failures, self.passes = error, failures, 0
        self.passed = asyncio.Event()

    async def run_once(self, now: float) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.passes += 1
        self.passed.set()


async def test_an_unavailable_backend_is_retried() -> None:
    duty = Flaky(BackendUnavailable("redis is unreachable"), failures=1)
    supervisor = Supervisor([duty])
    supervisor.start()
    try:
        async with asyncio.timeout(5):
            await duty.passed.wait()
        assert duty.failed_passes == 1
    finally:
        await supervisor.stop()


@pytest.mark.parametrize("error", [PermissionError("no access"), OSError("disk full")])
async def test_an_os_error_is_a_bug_not_a_blip(error: OSError) -> None:
    """Only ``BackendUnavailable`` means "try again": each backend converts its driver's
    connection errors into it, so a bare OSError (a permissions error) must not retry forever."""
    duty = Flaky(error, failures=1)
    supervisor = Supervisor([duty])
    supervisor.start()
    try:
        async with asyncio.timeout(5):
            died = await supervisor.wait()
        assert died is error and duty.passes == 0
    finally:
        await supervisor.stop()


async def test_a_duty_stopped_on_purpose_is_no_death() -> None:
    """A drained worker stops its processor and goes on: the supervisor keeps watching the
    others, and still reports the one that then dies."""
    stopped, dying = Flaky(OSError("x"), failures=0), Flaky(OSError("disk full"), failures=0)
    supervisor = Supervisor([stopped, dying])
    supervisor.start()
    try:
        watching = asyncio.create_task(supervisor.wait())
        await stopped.stop()
        await asyncio.sleep(0.01)
        assert not watching.done()
        dying.failures = 1
        async with asyncio.timeout(5):
            assert await watching is dying.error
    finally:
        await supervisor.stop()
