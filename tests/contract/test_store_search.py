"""Searching the task list by idempotency key and by metadata, on SQLite, MariaDB and
PostgreSQL: a key is found with its type in its tenant; a metadata page reads one window of
tasks and its cursor goes on past it, so a match older than the window is still reached."""

from __future__ import annotations

import time

import pytest

from conveyor.errors import ValidationError
from conveyor.ids import new_id
from conveyor.store.protocol import METADATA_WINDOW, ListRequest, TaskFilter
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task


async def test_an_idempotency_key_is_found_with_its_type_in_its_tenant(store: SqlStore) -> None:
    keyed = make_task(idempotency_key="k")
    await store.tasks.insert([keyed, make_task("other", idempotency_key="k"), make_task()])
    page = await store.tasks.list_tasks(ListRequest(
        TaskFilter(tenant="default", task_type="echo", idempotency_key="k"), None, 10))
    assert [t.id for t in page.tasks] == [keyed.id] and page.next_cursor is None
    with pytest.raises(ValidationError, match="task type"):
        await store.tasks.list_tasks(ListRequest(TaskFilter(idempotency_key="k"), None, 10))


async def test_a_metadata_search_pages_through_windows(store: SqlStore) -> None:
    now = time.time()
    old = make_task(id=new_id(now - 60), created_at=now - 60, metadata={"order": "7"})
    fillers = [make_task(metadata={"order": "8"}) for _ in range(METADATA_WINDOW + 1)]
    await store.tasks.insert([old])
    await store.tasks.insert(fillers)
    where = TaskFilter(metadata=("order", "7"))
    first = await store.tasks.list_tasks(ListRequest(where, None, 50))
    assert first.tasks == [] and first.next_cursor is not None  # a window without a match
    second = await store.tasks.list_tasks(ListRequest(where, first.next_cursor, 50))
    assert [t.id for t in second.tasks] == [old.id] and second.next_cursor is None
