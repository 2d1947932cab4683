"""Tenants: every task, task config and API key belongs to one; existing rows to 'default'.

- ``tenant`` (NOT NULL, server default 'default') on ``task``, ``api_keys`` and ``task_config``,
  so rows written before this revision, and by processes that do not yet know the column, land
  in the default tenant.
- Idempotency keys become per tenant: the unique constraint is (tenant, task_type,
  idempotency_hash), so one tenant can no longer suppress another's create by guessing its key.
- ``task_config`` is keyed by (tenant, task_type): each tenant has its own config of a type.
  SQLite cannot change a primary key in place, so there the table is copied; MariaDB and
  PostgreSQL alter it.
- Tenant-first indexes for every query a tenant-bound key makes (listed below; the same as
  ``schema.TASK_TENANT_INDEXES``, copied so this revision never changes with later code).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

DEFAULT = "default"
TASK_INDEXES: dict[str, tuple[str, ...]] = {
    "ix_task_tenant_id": ("tenant", "id"),
    "ix_task_tenant_status_id": ("tenant", "status", "id"),
    "ix_task_tenant_type_id": ("tenant", "task_type", "id"),
    "ix_task_tenant_type_status": ("tenant", "task_type", "status"),
    "ix_task_tenant_created": ("tenant", "created_at"),
    "ix_task_tenant_finished": ("tenant", "finished_at"),
}


def _tenant_column() -> sa.Column[str]:
    return sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT)


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(_tenant_column())
        batch.drop_constraint("uq_task_idempotency_hash", type_="unique")
        batch.create_unique_constraint(
            "uq_task_tenant_idempotency", ["tenant", "task_type", "idempotency_hash"]
        )
    for name, columns in TASK_INDEXES.items():
        op.create_index(name, "task", list(columns))
    op.add_column("api_keys", _tenant_column())
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant", "created_at"])
    op.add_column("task_config", _tenant_column())
    _config_key(("tenant", "task_type"))


def downgrade() -> None:
    """Back to one tenant: other tenants' configs are dropped (their types would clash) and
    their tasks' idempotency keys forgotten; their tasks and keys fall to the default."""
    op.execute(sa.text(f"DELETE FROM task_config WHERE tenant <> '{DEFAULT}'"))
    _config_key(("task_type",))
    if op.get_bind().dialect.name != "sqlite":  # there the copy left the column out
        op.drop_column("task_config", "tenant")
    op.drop_index("ix_api_keys_tenant", "api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("tenant")
    for name in TASK_INDEXES:
        op.drop_index(name, "task")
    op.execute(sa.text(
        f"UPDATE task SET idempotency_hash = NULL, idempotency_key = NULL "
        f"WHERE tenant <> '{DEFAULT}'"
    ))
    with op.batch_alter_table("task") as batch:
        batch.drop_constraint("uq_task_tenant_idempotency", type_="unique")
        batch.create_unique_constraint(
            "uq_task_idempotency_hash", ["task_type", "idempotency_hash"]
        )
        batch.drop_column("tenant")


def _config_key(key: tuple[str, ...]) -> None:
    """Make ``key`` the primary key of ``task_config`` (its tenant column exists)."""
    dialect = op.get_bind().dialect.name
    columns = ", ".join(key)
    if dialect == "postgresql":
        op.execute(sa.text(
            "ALTER TABLE task_config DROP CONSTRAINT task_config_pkey, "
            f"ADD CONSTRAINT task_config_pkey PRIMARY KEY ({columns})"
        ))
    elif dialect in ("mysql", "mariadb"):
        op.execute(sa.text(
            f"ALTER TABLE task_config DROP PRIMARY KEY, ADD PRIMARY KEY ({columns})"
        ))
    else:
        _copy_sqlite_config(key)


def _copy_sqlite_config(key: tuple[str, ...]) -> None:
    """SQLite: a new table with the new key and the old table's columns (read from the
    database itself), the rows copied over, the old table dropped. Going down, the copy
    leaves the tenant column out."""
    conn = op.get_bind()
    old = sa.Table("task_config", sa.MetaData(), autoload_with=conn)
    kept = [c for c in old.columns if c.name != "tenant" or "tenant" in key]
    op.create_table(
        "task_config_new",
        *(sa.Column(c.name, c.type, nullable=c.nullable and c.name not in key,
                    server_default=c.server_default) for c in kept),
        sa.PrimaryKeyConstraint(*key),
    )
    names = ", ".join(c.name for c in kept)
    op.execute(sa.text(f"INSERT INTO task_config_new ({names}) SELECT {names} FROM task_config"))
    op.drop_table("task_config")
    op.rename_table("task_config_new", "task_config")
