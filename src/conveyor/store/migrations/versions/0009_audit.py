"""The audit log: one row per operator action (who, tenant, action, target, before / after,
when, from where), written in the transaction of the action.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"

# As store.schema.BigId: SQLite only auto-increments an INTEGER PRIMARY KEY.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("client", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("before_json", sa.Text),
        sa.Column("after_json", sa.Text),
        sa.Column("detail", sa.String(255)),
    )
    op.create_index("ix_audit_tenant_id", "audit_log", ["tenant", "id"])
    op.create_index("ix_audit_tenant_target", "audit_log", ["tenant", "target_id", "id"])
    op.create_index("ix_audit_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
