"""The store contract for per-tenant weights and quotas, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from conveyor.audit import CLI, Action, AuditEntry, AuditQuery
from conveyor.models import Priority, Task, TaskStatus, TenantLimits
from conveyor.store.sql import SqlStore


async def test_tenant_limits_crud(store: SqlStore) -> None:
    acme = TenantLimits("acme", weight=3, max_pending=10_000_000_000, creates_per_second=2.5,
                        updated_at=1.5)
    assert await store.tenant_limits.get_limits("acme") is None
    await store.tenant_limits.put_limits(acme)
    await store.tenant_limits.put_limits(TenantLimits("beta", updated_at=2.0))
    assert await store.tenant_limits.get_limits("acme") == acme
    unlimited = replace(acme, max_pending=None, creates_per_second=None, updated_at=3.0)
    await store.tenant_limits.put_limits(unlimited)
    beta = TenantLimits("beta", 1, updated_at=2.0)
    assert await store.tenant_limits.list_limits() == [unlimited, beta]
    assert await store.tenant_limits.delete_limits("acme")
    assert not await store.tenant_limits.delete_limits("acme")
    assert [r.tenant for r in await store.tenant_limits.list_limits()] == ["beta"]


async def test_count_pending_counts_pending_rows_only(store: SqlStore) -> None:
    made = [
        Task(id=f"01J{n:023d}", task_type="echo", priority=Priority.NORMAL, payload={},
             status=TaskStatus.PENDING, max_retries=0, timeout=5.0, created_at=1.0, run_at=1.0)
        for n in range(3)
    ]
    theirs = replace(made[2], id=f"01J{9:023d}", tenant="acme")
    await store.tasks.insert([*made, theirs])
    await store.moves.start([made[0].id], "w1", 2.0)
    assert await store.tenant_limits.count_pending("default") == 2
    assert await store.tenant_limits.count_pending("acme") == 1
    assert await store.tenant_limits.count_pending("nobody") == 0


async def test_changes_carry_their_audit_rows(store: SqlStore) -> None:
    first = TenantLimits("acme", weight=2, updated_at=10.0)
    await store.tenant_limits.put_limits(first, audit=AuditEntry(CLI, Action.TENANT_SET, "acme"))
    second = replace(first, max_pending=5, updated_at=11.0)
    await store.tenant_limits.put_limits(second, audit=AuditEntry(CLI, Action.TENANT_SET, "acme"))
    reset = AuditEntry(CLI, Action.TENANT_RESET, "acme")
    assert await store.tenant_limits.delete_limits("acme", audit=reset)
    assert not await store.tenant_limits.delete_limits("acme", audit=reset)  # no row, no audit
    page = await store.audit.list_entries(AuditQuery(target_id="acme"), None)
    changes = [(r.entry.action, r.entry.before, r.entry.after) for r in reversed(page.records)]
    view = {"weight": 2, "max_pending": None, "creates_per_second": None}
    assert changes == [
        ("tenant.set", None, view),
        ("tenant.set", view, {**view, "max_pending": 5}),
        ("tenant.reset", {**view, "max_pending": 5}, None),
    ]
