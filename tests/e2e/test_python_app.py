"""A user's own tasks: ``@app.task`` in a module, run by ``conveyor standalone --app``,
submitted from Python with ``submit`` / ``asubmit`` and awaited through their handles."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from conveyor.client import Client, TaskFailed, TaskHandle
from conveyor.registrations import TaskFunction
from tests.e2e.test_standalone import Standalone, standalone

pytestmark = pytest.mark.slow

MODULE = '''
from __future__ import annotations

import asyncio
import os
import threading

from conveyor import Conveyor

app = Conveyor(url=os.environ.get("MYAPP_URL", "http://127.0.0.1:8080"))


@app.task("resize_image", timeout=30, max_retries=3, priority="high")
async def resize(path: str) -> dict:
    await asyncio.sleep(0.01)
    return {"resized": path, "thread": threading.current_thread().name}


@app.task("checksum")
def checksum(text: str) -> dict:
    return {"length": len(text), "pid": os.getpid()}


@app.task("explode", max_retries=0)
def explode() -> None:
    raise ValueError("boom")
'''


@pytest.fixture
def user_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Standalone, ModuleType]]:
    name = f"myapp_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    # No PYTHONPATH: the module is found in the directory the server runs in, as a user's is.
    with standalone(tmp_path, tmp_path / "conveyor.db", args=("--app", f"{name}:app")) as server:
        monkeypatch.setenv("MYAPP_URL", server.url)  # read when the test imports the module
        monkeypatch.syspath_prepend(str(tmp_path))
        try:
            yield server, importlib.import_module(name)
        finally:
            sys.modules.pop(name, None)


def test_submit_and_wait_from_python(user_app: tuple[Standalone, ModuleType]) -> None:
    server, module = user_app
    handles: list[TaskHandle] = []

    def submit(function: TaskFunction[..., object], **payload: object) -> TaskHandle:
        handle: TaskHandle = function.submit(**payload)
        handles.append(handle)
        return handle

    try:
        handle = submit(module.resize, path="a.png")
        # The registration's defaults apply to a task submitted without options.
        assert handle.info.task_type == "resize_image"
        assert handle.info.priority == "high"
        assert handle.info.max_retries == 3
        assert handle.info.timeout_seconds == 30
        result = handle.result(timeout=10)
        assert result == {"resized": "a.png", "thread": "MainThread"}  # on the event loop

        plain = submit(module.checksum, text="hello")
        outcome = plain.result(timeout=10)
        assert outcome["length"] == 5
        assert server.proc is not None
        assert outcome["pid"] != server.proc.pid  # plain functions run in a task process
        assert plain.info.priority == "normal"

        broken = submit(module.explode)
        with pytest.raises(TaskFailed, match="boom"):
            broken.result(timeout=10)
        assert broken.info.status == "FAILED"
        assert broken.info.attempt == 1
    finally:
        module.app.close()  # the one client every submit shared
    assert len({id(h.client) for h in handles}) == 1

    # Still a plain function when called directly.
    assert module.checksum(text="abc")["length"] == 3


async def test_asubmit_and_await_the_result(user_app: tuple[Standalone, ModuleType]) -> None:
    _, module = user_app
    handle = await module.resize.asubmit(path="b.png")
    try:
        assert handle.info.priority == "high"
        assert handle.info.max_retries == 3
        result = await handle.result()
        assert result["resized"] == "b.png"
        assert handle.info.status == "SUCCESS"
        second = await module.checksum.asubmit(text="four")
        assert (await second)["length"] == 4  # a handle is awaitable too
        assert second.client is handle.client  # one client per event loop, reused
    finally:
        await module.app.aclose()


def count_of(server: Standalone, task_type: str) -> int:
    with Client(server.url, timeout=10) as client:
        return sum(1 for _ in client.list(task_type=task_type))


def test_options_apply_to_one_submission(user_app: tuple[Standalone, ModuleType]) -> None:
    server, module = user_app
    try:
        tuned = module.resize.options(priority="low", timeout=7, max_retries=1).options(
            metadata={"team": "images"}
        )
        handle = tuned.submit("c.png")  # positional arguments map onto the parameters
        assert (handle.info.priority, handle.info.timeout_seconds) == ("low", 7)
        assert (handle.info.max_retries, handle.info.metadata) == (1, {"team": "images"})
        assert handle.result(timeout=10)["resized"] == "c.png"
        assert handle.info.payload == {"path": "c.png"}

        delayed = module.resize.options(delay=30).submit(path="d.png")
        created = datetime.fromisoformat(delayed.info.created_at or "")
        run_at = datetime.fromisoformat(delayed.info.run_at or "")
        assert 25 <= (run_at - created).total_seconds() <= 35
        assert module.app.client().get(delayed.id).status == "PENDING"

        key = f"once-{server.port}"
        first = module.checksum.options(idempotency_key=key).submit(text="x")
        again = module.checksum.options(idempotency_key=key).submit(text="x")
        assert again.id == first.id and again.info.created is False

        plain = module.resize.submit(path="e.png")  # options were for those calls only
        assert (plain.info.priority, plain.info.timeout_seconds) == ("high", 30)
    finally:
        module.app.close()


async def test_async_options_twin(user_app: tuple[Standalone, ModuleType]) -> None:
    _, module = user_app
    try:
        handle = await module.resize.options(priority="low", timeout=9).asubmit("f.png")
        assert (handle.info.priority, handle.info.timeout_seconds) == ("low", 9)
        assert (await handle)["resized"] == "f.png"
        with pytest.raises(TypeError):
            await module.resize.asubmit(size=3)
    finally:
        await module.app.aclose()


def test_arguments_are_checked_at_submit_and_nothing_is_created(
    user_app: tuple[Standalone, ModuleType],
) -> None:
    """Before, ``submit(**payload)`` sent whatever it was given: the task was created and then
    failed permanently on the worker."""
    server, module = user_app
    before = count_of(server, "resize_image")
    try:
        with pytest.raises(TypeError, match="missing a required argument: 'path'"):
            module.resize.submit()
        with pytest.raises(TypeError, match="unexpected keyword argument 'size'"):
            module.resize.submit(path="a.png", size=3)
        with pytest.raises(TypeError, match="too many positional arguments"):
            module.resize.submit("a.png", "b.png")
        with pytest.raises(TypeError, match=r"unexpected keyword argument.*'prio'"):
            module.resize.options(prio="high")
    finally:
        module.app.close()
    assert count_of(server, "resize_image") == before
