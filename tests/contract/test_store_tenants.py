"""Tenants in the store, on every database: reads, moves, counts, configs and keys filtered by
tenant in SQL; idempotency keys per tenant; an install from before tenants lands in 'default'."""

from __future__ import annotations

import time

import sqlalchemy as sa

from conveyor.apikeys import Scope, new_key
from conveyor.models import Priority, TaskConfig, TaskStatus
from conveyor.store.migrate import upgrade
from conveyor.store.protocol import ListRequest, TaskFilter
from conveyor.store.sql import SqlStore
from conveyor.tenants import DEFAULT_TENANT
from tests.contract.store_support import make_task


async def test_reads_see_only_their_tenant(store: SqlStore) -> None:
    a = make_task(tenant="acme")
    b = make_task("other", tenant="bravo")
    await store.tasks.insert([a, b])
    assert await store.tasks.get(a.id, "bravo") is None
    assert (await store.tasks.get(a.id, "acme")).id == a.id  # type: ignore[union-attr]
    assert (await store.tasks.get(a.id)).tenant == "acme"  # type: ignore[union-attr]
    assert [t.id for t in await store.tasks.get_many([a.id, b.id], "bravo")] == [b.id]
    assert await store.tasks.logs(a.id, "bravo") == []
    assert len(await store.tasks.logs(a.id, "acme")) == 1

    async def listed(**where: object) -> list[str]:
        page = await store.tasks.list_tasks(ListRequest(TaskFilter(**where), None, 50))  # type: ignore[arg-type]
        return [t.id for t in page.tasks]

    assert await listed(tenant="bravo") == [b.id]
    assert await listed(tenant="bravo", status=TaskStatus.PENDING, task_type="echo") == []
    assert await listed(tenant="acme", task_type="echo") == [a.id]
    assert set(await listed()) == {a.id, b.id}


async def test_counts_are_per_tenant(store: SqlStore) -> None:
    await store.tasks.insert([make_task(tenant="acme"), make_task(tenant="acme"),
                              make_task(tenant="bravo", priority=Priority.HIGH)])
    assert await store.stats.count_by_status("acme") == {("echo", "PENDING"): 2}
    assert await store.stats.count_by_status() == {("echo", "PENDING"): 3}
    assert await store.stats.count_pending_by_priority("bravo") == {
        "high": 1, "normal": 0, "low": 0}
    created, _ = await store.stats.recent(time.time() - 60, "bravo")
    assert created == 1
    assert await store.stats.count_by_status("nobody") == {}


async def test_moves_of_another_tenant_do_nothing(store: SqlStore) -> None:
    a = make_task(tenant="acme")
    await store.tasks.insert([a])
    now = time.time()
    assert await store.moves.cancel_pending(a.id, now, "x", tenant="bravo") is None
    assert await store.moves.set_priority(a.id, Priority.HIGH, now, tenant="bravo") is None
    assert (await store.tasks.get(a.id)).status == TaskStatus.PENDING  # type: ignore[union-attr]
    cancelled = await store.moves.cancel_pending(a.id, now, "x", tenant="acme")
    assert cancelled is not None and cancelled.status == TaskStatus.CANCELLED
    assert await store.moves.reopen(a.id, now, "retry", tenant="bravo") is None
    assert (await store.moves.reopen(a.id, now, "retry", tenant="acme")) is not None


async def test_idempotency_keys_are_per_tenant(store: SqlStore) -> None:
    first = await store.tasks.insert([make_task(tenant="acme", idempotency_key="k")])
    other = await store.tasks.insert([make_task(tenant="bravo", idempotency_key="k")])
    assert first[0].created and other[0].created
    assert first[0].task.id != other[0].task.id
    [again] = await store.tasks.insert([make_task(tenant="bravo", idempotency_key="k")])
    assert not again.created and again.task.id == other[0].task.id
    assert again.task.tenant == "bravo"
    # one batch with the key in both tenants creates both
    batch = await store.tasks.insert([make_task(tenant="c1", idempotency_key="z"),
                                      make_task(tenant="c2", idempotency_key="z")])
    assert all(c.created for c in batch)


async def test_configs_are_per_tenant(store: SqlStore) -> None:
    await store.configs.put_config(TaskConfig("x", "http", {"url": "http://a"}, tenant="acme"))
    await store.configs.put_config(TaskConfig("x", "http", {"url": "http://b"}, tenant="bravo"))
    await store.configs.put_config(TaskConfig("x", "http", {"url": "http://a2"}, tenant="acme"))
    acme = await store.configs.get_config("x", "acme")
    assert acme is not None and acme.executor_config == {"url": "http://a2"}
    assert await store.configs.get_config("x") is None  # the default tenant has none
    assert [c.tenant for c in await store.configs.list_configs()] == ["acme", "bravo"]
    assert [c.tenant for c in await store.configs.list_configs("bravo")] == ["bravo"]
    assert await store.configs.delete_config("x", "bravo")
    assert not await store.configs.delete_config("x", "bravo")
    assert await store.configs.get_config("x", "acme") is not None


async def test_keys_are_per_tenant(store: SqlStore) -> None:
    mine, _ = new_key(Scope.ADMIN, "a", time.time(), "acme")
    theirs, _ = new_key(Scope.READ, "b", time.time())
    await store.keys.put_key(mine)
    await store.keys.put_key(theirs)
    assert [k.key_id for k in await store.keys.list_keys("acme")] == [mine.key_id]
    assert (await store.keys.get_key(theirs.key_id)).tenant == DEFAULT_TENANT  # type: ignore[union-attr]
    assert not await store.keys.revoke_key(theirs.key_id, time.time(), "acme")
    assert await store.keys.revoke_key(mine.key_id, time.time(), "acme")
    assert len(await store.keys.list_keys()) == 2


async def test_an_install_at_0007_migrates_into_the_default_tenant(store: SqlStore) -> None:
    engine = store.db.engine
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to_0007)
    now = time.time()
    t = make_task(idempotency_key="old")
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO task (id, task_type, priority, status, payload, metadata, retry_count,"
            " max_retries, timeout, attempt, idempotency_key, idempotency_hash, created_at,"
            " run_at, updated_at, version) VALUES (:id, 'echo', 1, 'PENDING', '{}', '{}', 0, 1,"
            " 30, 0, 'old', :hash, :now, :now, :now, 0)"
        ), {"id": t.id, "hash": _hash("echo", "old"), "now": now})
        await conn.execute(sa.text(
            "INSERT INTO task_config (task_type, executor, executor_config, enabled, updated_at)"
            " VALUES ('legacy', 'http', '{\"url\": \"http://x\"}', :yes, :now)"
        ), {"yes": True, "now": now})
        await conn.execute(sa.text(
            "INSERT INTO api_keys (key_id, secret_hash, scope, name, created_at)"
            " VALUES ('oldkey', 'h', 'admin', 'n', :now)"
        ), {"now": now})
    await upgrade(engine)
    found = await store.tasks.get(t.id, DEFAULT_TENANT)
    assert found is not None and found.tenant == DEFAULT_TENANT
    config = await store.configs.get_config("legacy", DEFAULT_TENANT)
    assert config is not None and config.tenant == DEFAULT_TENANT
    key = await store.keys.get_key("oldkey")
    assert key is not None and key.tenant == DEFAULT_TENANT
    [same] = await store.tasks.insert([make_task(idempotency_key="old")])
    assert not same.created and same.task.id == t.id  # the old key still holds in 'default'
    [fresh] = await store.tasks.insert([make_task(idempotency_key="old", tenant="acme")])
    assert fresh.created
    await store.configs.put_config(TaskConfig("legacy", "http", {"url": "http://y"},
                                              tenant="acme"))
    assert len(await store.configs.list_configs()) == 2


def _downgrade_to_0007(sync: sa.Connection) -> None:
    from alembic import command

    from conveyor.store.migrate import _config

    command.downgrade(_config(sync), "0007")


def _hash(task_type: str, key: str) -> str:
    from conveyor.store.rows import key_hash

    return key_hash(task_type, key) or ""
