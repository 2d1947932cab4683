"""Every tenant-filtered query the API makes is served by an index that starts with
``tenant`` (SQLite's planner, which reports its choice without statistics): the statements the
store really sends are captured and explained."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.models import TaskStatus
from conveyor.store.protocol import ListRequest, TaskFilter
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task

Query = Callable[[SqlStore], Awaitable[object]]
QUERIES: dict[str, Query] = {
    "list": lambda s: s.tasks.list_tasks(ListRequest(TaskFilter(tenant="acme"), None, 50)),
    "list by status": lambda s: s.tasks.list_tasks(
        ListRequest(TaskFilter(tenant="acme", status=TaskStatus.PENDING), None, 50)),
    "list by type": lambda s: s.tasks.list_tasks(
        ListRequest(TaskFilter(tenant="acme", task_type="echo"), None, 50)),
    "counts": lambda s: s.stats.count_by_status("acme"),
    "pending by priority": lambda s: s.stats.count_pending_by_priority("acme"),
    "recent": lambda s: s.stats.recent(time.time() - 60, "acme"),
    "configs": lambda s: s.configs.list_configs("acme"),
    "keys": lambda s: s.keys.list_keys("acme"),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_tenant_queries_use_a_tenant_index(tmp_path: Path, name: str) -> None:
    store = SqlStore(str(tmp_path / "c.db"))
    await store.migrate()
    await store.tasks.insert([make_task(tenant="acme"), make_task(tenant="bravo")])
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    sa.event.listen(store.db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await QUERIES[name](store)
    finally:
        sa.event.remove(store.db.engine.sync_engine, "before_cursor_execute", capture)
        plans = []
        async with store.db.engine.connect() as conn:
            for statement, params in sent:
                rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
                plans.append(" | ".join(str(r[-1]) for r in rows))
        await store.close()
    assert sent, "the query sent nothing"
    for plan in plans:  # e.g. "SEARCH task USING INDEX ix_task_tenant_id (tenant=?)"
        assert "(tenant=?" in plan and "INDEX" in plan, plan
