"""The store contract for task type configs, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.errors import Conflict
from conveyor.models import Backoff, Priority, TaskConfig
from conveyor.store.sql import SqlStore


async def test_task_config_crud(store: SqlStore) -> None:
    cfg = TaskConfig(
        "http_call", executor="http", executor_config={"url": "http://x"}, timeout=5,
        max_retries=1, priority=Priority.HIGH, backoff=Backoff(1, 2, 10, 0.1), updated_at=1.0,
    )
    await store.configs.put_config(cfg)
    assert await store.configs.get_config("http_call") == cfg
    await store.configs.put_config(replace(cfg, timeout=9.0))
    assert [c.timeout for c in await store.configs.list_configs()] == [9.0]
    assert await store.configs.delete_config("http_call")
    assert not await store.configs.delete_config("http_call")
    assert await store.configs.get_config("http_call") is None


async def test_a_write_that_keeps_failing_raises_instead_of_passing_for_saved(
    store: SqlStore,
) -> None:
    # A row the database refuses on every try (executor is NOT NULL) fails the insert each
    # time, exactly as three lost insert races in a row would.
    broken = TaskConfig("broken", executor=None)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        await store.configs.put_config(broken)
    assert await store.configs.get_config("broken") is None
