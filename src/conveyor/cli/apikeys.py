"""``conveyor apikey``: create, list and revoke API keys, straight in the database.

The CLI holds the database, so it is the one place that may make a ``superadmin`` key (one
that spans tenants) and put a key in any tenant; over the API an admin manages only its own
tenant's keys."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.common import (
    OPERATIONS,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    T,
    cli,
    err,
    fail,
    out,
    settings_from,
    show,
)
from conveyor.cli.hints import database_error
from conveyor.cli.tables import ago, new_table
from conveyor.config import Settings
from conveyor.dbhelp import database_hint
from conveyor.errors import ConveyorError
from conveyor.tenants import DEFAULT_TENANT, check_tenant

if TYPE_CHECKING:
    from conveyor.store.sql import SqlStore

apikey_cli = typer.Typer(help="Create, list and revoke API keys (talks to the database).")
cli.add_typer(apikey_cli, name="apikey", rich_help_panel=OPERATIONS)


def _with_store(settings: Settings, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    import asyncio

    from conveyor.store.sql import SqlStore

    async def go() -> T:
        store = SqlStore(settings.database_url)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except ConveyorError as exc:
        fail(database_hint(settings.database_url, str(exc)) or str(exc))
    except Exception as exc:
        fail(database_error(settings.database_url, exc))


@apikey_cli.command("create")
def apikey_create(
    scope: Annotated[str, typer.Option(
        help="read, submit, admin, or superadmin (every tenant; made only here).")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to.")] = DEFAULT_TENANT,
    config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a key and print it once; only its hash is stored.

    Example: conveyor apikey create --scope submit --tenant acme --name billing
    """
    from conveyor.apikeys import Scope, new_key
    from conveyor.audit import CLI, key_created

    try:
        parsed = Scope.parse(scope)
        check_tenant(tenant)
    except ConveyorError as exc:
        fail(str(exc), 2)
    key, token = new_key(parsed, name, time.time(), tenant)
    actor = replace(CLI, tenant=tenant)
    _with_store(settings_from(config, database_url=db),
                lambda store: store.keys.put_key(key, audit=key_created(actor, key)))
    if as_json:
        show({"key_id": key.key_id, "scope": parsed.label, "name": name, "tenant": tenant,
              "key": token}, True)
        return
    err.print(f"created key {key.key_id} with scope {parsed.label} in tenant {tenant}; "
              "it is shown only once:")
    out.print(token, highlight=False)


@apikey_cli.command("revoke")
def apikey_revoke(
    key_id: str, config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Revoke a key (by its id, the part after cvk_); refused from the next call on."""
    from conveyor.audit import CLI, key_revoked

    settings = settings_from(config, database_url=db)
    audit = key_revoked(CLI, key_id)
    if not _with_store(
        settings, lambda store: store.keys.revoke_key(key_id, time.time(), audit=audit)
    ):
        fail(f"no active key with id {key_id!r}")
    if as_json:
        show({"revoked": key_id}, True)
        return
    err.print(f"revoked key {key_id}")


@apikey_cli.command("list")
def apikey_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Key ids, tenants, scopes and names (never the secrets)."""
    settings = settings_from(config, database_url=db)
    keys = _with_store(settings, lambda store: store.keys.list_keys(tenant))
    if as_json:
        show([{"key_id": k.key_id, "tenant": k.tenant, "scope": k.scope.label, "name": k.name,
               "created_at": k.created_at, "revoked_at": k.revoked_at} for k in keys], True)
        return
    table = new_table("key_id", "tenant", "scope", "name", "created", "revoked")
    for k in keys:
        table.add_row(k.key_id, k.tenant, k.scope.label, k.name, ago(k.created_at),
                      ago(k.revoked_at))
    out.print(table)
