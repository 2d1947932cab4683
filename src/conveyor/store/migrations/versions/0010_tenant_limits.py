"""Per-tenant dispatch weight and quotas (``tenant_limits``): fair dispatch and 429s on create.

A tenant without a row has weight 1 and no quota, so installs from before this revision behave
as they did.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "tenant_limits",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("weight", sa.Integer, nullable=False, server_default="1"),
        sa.Column("max_pending", sa.BigInteger),
        sa.Column("creates_per_second", sa.Double),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_limits")
