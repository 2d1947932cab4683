"""``PUT /api/v1/task-configs`` refuses what no worker may or can run, and the worker refuses it
again (docs/design.md §6, §8.10).

The attack: an API key PUT ``{"executor": "python", "executor_config": {"function":
"subprocess:getoutput"}}`` and a task of that type ran its payload as a shell command on a
worker. Now a function runs only if it is registered with ``@app.task`` or defined in a module
listed in ``worker.python_modules``; an unknown executor, or an http / grpc config without its
``url`` / ``target``, is a 422 too. Before the fix every PUT here answered 200 and the command
ran (SUCCESS, its marker file written).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.models import TaskConfig
from tests.integration.test_api import Api, api, error_of, running, serve

SHELL = {"executor": "python", "executor_config": {"function": "subprocess:getoutput"}}
LISTED = "tests.support.exposed"
__all__ = ["api"]  # the fixture, imported for these tests


async def test_put_refuses_a_function_that_may_not_run(api: Api) -> None:
    message = error_of(await api.http.put("/api/v1/task-configs/sh", json=SHELL), 422)
    assert "subprocess:getoutput" in message
    assert "worker.python_modules" in message
    assert (await api.http.get("/api/v1/task-configs/sh")).status_code == 404


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"executor": "nosuch"}, ["'nosuch'", "unknown", "http", "python"]),
        ({"executor": "http", "executor_config": {}}, ["executor_config.url"]),
        ({"executor": "http", "executor_config": {"url": "http://h/x", "method": "BREW"}},
         ["executor_config.method"]),
        ({"executor": "grpc", "executor_config": {}}, ["executor_config.target"]),
        ({"executor": "grpc", "executor_config": {"target": "no-port"}}, ["host:port"]),
        ({"executor": "python", "executor_config": {"function": "no colon"}},
         ["executor_config.function", "module:name"]),
        ({"executor": "python", "executor_config": {"function": 7}}, ["executor_config.function"]),
    ],
)
async def test_put_refuses_configs_a_worker_would_refuse(
    api: Api, body: dict[str, Any], names: list[str]
) -> None:
    message = error_of(await api.http.put("/api/v1/task-configs/t", json=body), 422)
    for name in names:
        assert name in message
    assert (await api.http.get("/api/v1/task-configs/t")).status_code == 404


async def test_put_accepts_what_workers_run(api: Api) -> None:
    accepted = [
        {"executor": "python", "executor_config": {"function": "conveyor.builtin:echo"}},
        {"executor": "python"},  # the type's own registration, looked up on the worker
        {"executor": "http", "executor_config": {"url": "http://mail.internal/send"}},
        {"executor": "grpc", "executor_config": {"target": "billing.internal:50051"}},
        {"executor": "reverse"},  # the example plug-in, installed with the dev tools
    ]
    for body in accepted:
        response = await api.http.put("/api/v1/task-configs/t", json=body)
        assert response.status_code == 200, (body, response.text)


async def test_a_listed_module_exposes_its_own_functions(tmp_path: Path) -> None:
    async with serve(str(tmp_path / "c.db"), worker={"python_modules": [LISTED]}) as api:
        config = {"executor": "python", "executor_config": {"function": f"{LISTED}:double"}}
        assert (await api.http.put("/api/v1/task-configs/double", json=config)).status_code == 200
        async with running(api):
            task = await api.created(task_type="double", payload={"x": 21})
            final = await api.wait_final(task["task_id"])
        assert final["status"] == "SUCCESS", final
        assert final["result"] == {"double": 42}


async def test_the_worker_refuses_it_again(tmp_path: Path) -> None:
    """A config that reached the store some other way (an older version, a direct write, an
    API with other settings) is refused by the worker itself, before anything is imported:
    the module is listed, but getoutput is only imported there, not its own function."""
    marker = tmp_path / "pwned"
    async with serve(str(tmp_path / "c.db"), worker={"python_modules": [LISTED]}) as api:
        await api.parts.store.configs.put_config(TaskConfig(
            "sh", "python", {"function": f"{LISTED}:getoutput"}, max_retries=3,
            updated_at=time.time(),
        ))
        async with running(api):
            task = await api.created(task_type="sh", payload={"cmd": f"touch {marker}"})
            final = await api.wait_final(task["task_id"])
    assert final["status"] == "FAILED", final
    assert final["attempt"] == 1  # permanent: retrying cannot make it allowed
    assert "defined in 'subprocess'" in final["error"]
    assert not marker.exists()


async def test_a_worker_does_not_take_a_function_it_may_not_import(tmp_path: Path) -> None:
    """A module the worker does not list: the worker does not advertise the type, so the task
    waits PENDING, reported as having no live worker (a worker whose settings list the module
    runs it), and nothing is imported or run."""
    marker = tmp_path / "pwned"
    async with serve(str(tmp_path / "c.db"), worker={"python_modules": [LISTED]}) as api:
        await api.parts.store.configs.put_config(TaskConfig(
            "sh", "python", {"function": "subprocess:getoutput"}, max_retries=3,
            updated_at=time.time(),
        ))
        async with running(api):
            task = await api.created(task_type="sh", payload={"cmd": f"touch {marker}"})
            await asyncio.sleep(1.0)
            queues = (await api.http.get("/api/v1/queues")).json()
            final = (await api.http.get(f"/api/v1/tasks/{task['task_id']}")).json()
    assert final["status"] == "PENDING", final
    assert queues["no_worker"] == {"sh": 1}
    assert not marker.exists()
