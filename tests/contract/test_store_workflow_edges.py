"""``store.workflows.edges`` on SQLite, MariaDB and PostgreSQL: each node with the nodes it
runs after, in the order given, read through ``task_deps`` (what the console draws)."""

from __future__ import annotations

import time
from dataclasses import replace

from conveyor.ids import new_id
from conveyor.models import TaskStatus
from conveyor.store.sql import SqlStore
from conveyor.workflows import Workflow
from tests.contract.store_support import make_task


async def test_edges_name_each_nodes_parents_in_order(store: SqlStore) -> None:
    now = time.time()
    fetch, left, right = make_task(), make_task(), make_task()
    waiting = {"status": TaskStatus.WAITING}
    left, right = replace(left, parents=(fetch.id,), **waiting), replace(
        right, parents=(fetch.id,), **waiting)
    join = replace(make_task(), parents=(right.id, left.id), **waiting)
    nodes = {"fetch": fetch.id, "left": left.id, "right": right.id, "join": join.id}
    flow = Workflow(new_id(now), "default", "diamond", now, None, nodes)
    await store.workflows.create(flow, [fetch, left, right, join], now)
    assert await store.workflows.edges(flow) == {
        "left": ["fetch"], "right": ["fetch"], "join": ["right", "left"]}
    assert await store.workflows.edges(replace(flow, id=new_id(now))) == {}
