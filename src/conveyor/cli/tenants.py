"""``conveyor tenants``: each tenant's dispatch weight and create quotas, straight in the database
(like ``conveyor apikey``), each change with its audit row (``tenant.set``, ``tenant.reset``).
Schedulers and API processes pick a change up within a few seconds (``quotas.LIMITS_TTL``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.apikeys import _with_store as with_store
from conveyor.cli.common import (
    OPERATIONS,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    cli,
    err,
    fail,
    out,
    settings_from,
    show,
)
from conveyor.cli.tables import new_table
from conveyor.errors import ConveyorError
from conveyor.models import TenantLimits
from conveyor.tenants import check_tenant

if TYPE_CHECKING:
    from conveyor.store.sql import SqlStore

tenants_cli = typer.Typer(
    help="Per-tenant dispatch weight and create quotas (talks to the database)."
)
cli.add_typer(tenants_cli, name="tenants", rich_help_panel=OPERATIONS)


def describe(limits: TenantLimits) -> dict[str, object]:
    return {
        "tenant": limits.tenant, "weight": limits.weight, "max_pending": limits.max_pending,
        "creates_per_second": limits.creates_per_second, "updated_at": limits.updated_at,
    }


def check_limits(
    name: str, weight: int | None, max_pending: int | None, rate: float | None
) -> None:
    """Refuse nonsense before touching the database (exit code 2, like a bad option)."""
    try:
        check_tenant(name)
    except ConveyorError as exc:
        fail(str(exc), 2)
    if weight is not None and not 1 <= weight <= 1000:
        fail(f"--weight must be 1 to 1000, got {weight}", 2)
    if max_pending is not None and max_pending < 0:
        fail(f"--max-pending must be 0 or more, got {max_pending}", 2)
    if rate is not None and not rate > 0:
        fail(f"--creates-per-second must be above 0, got {rate}", 2)


@tenants_cli.command("set")
def tenants_set(
    name: str,
    weight: Annotated[int | None, typer.Option(
        help="Items the tenant takes per turn within a priority (1 to 1000; default 1).")] = None,
    max_pending: Annotated[int | None, typer.Option(
        help="PENDING tasks the tenant may have; creates past it get 429.")] = None,
    creates_per_second: Annotated[float | None, typer.Option(
        help="Creates a second (token bucket, one second of burst); past it 429.")] = None,
    unlimited: Annotated[bool, typer.Option(
        help="Drop both quotas (keep the weight).")] = False,
    config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Set a tenant's weight and quotas; options left out keep their value.

    Example: conveyor tenants set acme --weight 3 --max-pending 10000 --creates-per-second 50
    """
    check_limits(name, weight, max_pending, creates_per_second)
    settings = settings_from(config, database_url=db)

    async def put(store: SqlStore) -> TenantLimits:
        old = await store.tenant_limits.get_limits(name) or TenantLimits(name)
        new = TenantLimits(
            name,
            weight=old.weight if weight is None else weight,
            max_pending=None if unlimited else (
                old.max_pending if max_pending is None else max_pending),
            creates_per_second=None if unlimited else (
                old.creates_per_second if creates_per_second is None else creates_per_second),
            updated_at=time.time(),
        )
        from conveyor.audit import CLI, Action, AuditEntry

        entry = AuditEntry(CLI, Action.TENANT_SET, name)
        return await store.tenant_limits.put_limits(new, audit=entry)

    saved = with_store(settings, put)
    if as_json:
        show(describe(saved), True)
        return
    err.print(f"tenant {name}: weight {saved.weight}, max_pending "
              f"{_or_unlimited(saved.max_pending)}, creates_per_second "
              f"{_or_unlimited(saved.creates_per_second)}")


@tenants_cli.command("list")
def tenants_list(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Tenants with a weight or quota set (every other tenant: weight 1, no quota)."""
    rows = with_store(
        settings_from(config, database_url=db), lambda store: store.tenant_limits.list_limits()
    )
    if as_json:
        show([describe(r) for r in rows], True)
        return
    table = new_table("tenant", "weight", "max_pending", "creates/s")
    for r in rows:
        table.add_row(r.tenant, str(r.weight), _or_unlimited(r.max_pending),
                      _or_unlimited(r.creates_per_second))
    out.print(table)


@tenants_cli.command("rm")
def tenants_rm(
    name: str, config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """Forget a tenant's settings: back to weight 1 and no quota."""
    from conveyor.audit import CLI, Action, AuditEntry

    settings = settings_from(config, database_url=db)
    entry = AuditEntry(CLI, Action.TENANT_RESET, name)
    if not with_store(
        settings, lambda store: store.tenant_limits.delete_limits(name, audit=entry)
    ):
        fail(f"tenant {name!r} has no settings")
    if as_json:
        show({"removed": name}, True)
        return
    err.print(f"tenant {name}: back to weight 1, no quota")


def _or_unlimited(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:g}"
