"""Idempotency keys compared byte for byte on every database: a hash column carries the unique
constraint.

MariaDB's default collation (utf8mb4_general_ci) made keys differing only by case, trailing
space or accent collide on the old ``(task_type, idempotency_key)`` constraint. The new
``idempotency_hash`` is the SHA-256, in hex, of the task type and the key (UTF-8, a NUL between
them), which compares the same on every collation. Existing rows get their hash here (keys the old
collation made collide were never stored twice, so none clash).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

_task = sa.table(
    "task", sa.column("id", sa.String), sa.column("task_type", sa.String),
    sa.column("idempotency_key", sa.String), sa.column("idempotency_hash", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("idempotency_hash", sa.String(64)))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_task.c.id, _task.c.task_type, _task.c.idempotency_key)
        .where(_task.c.idempotency_key.is_not(None))
    ).all()
    if rows:
        fill = _task.update().where(_task.c.id == sa.bindparam("tid")).values(
            idempotency_hash=sa.bindparam("digest"))
        conn.execute(fill, [
            {"tid": r.id, "digest": _digest(r.task_type, r.idempotency_key)} for r in rows
        ])
    with op.batch_alter_table("task") as batch:
        batch.drop_constraint("uq_task_idempotency", type_="unique")
        batch.create_unique_constraint(
            "uq_task_idempotency_hash", ["task_type", "idempotency_hash"]
        )


def _digest(task_type: str, key: str) -> str:
    """As ``store.rows.key_hash`` computes it (kept here: a migration must not change later)."""
    return hashlib.sha256(f"{task_type}\x00{key}".encode()).hexdigest()


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_constraint("uq_task_idempotency_hash", type_="unique")
        batch.create_unique_constraint("uq_task_idempotency", ["task_type", "idempotency_key"])
        batch.drop_column("idempotency_hash")
