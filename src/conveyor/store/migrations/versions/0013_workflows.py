"""Task dependencies and workflows (docs/design.md §10).

Revision ID: 0013
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0014"


def upgrade() -> None:
    op.create_table(
        "task_deps",
        sa.Column("child_id", sa.String(26), primary_key=True),
        sa.Column("parent_id", sa.String(26), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("policy", sa.String(8), nullable=False),
        sa.Column("inputs", sa.Text),
    )
    op.create_index("ix_task_deps_parent", "task_deps", ["parent_id", "child_id"])
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(32)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False),
    )
    op.create_index("ix_workflows_tenant_id", "workflows", ["tenant", "id"])
    op.create_index("ix_workflows_created", "workflows", ["created_at"])
    op.create_table(
        "workflow_nodes",
        sa.Column("workflow_id", sa.String(26), primary_key=True),
        sa.Column("node", sa.String(128), primary_key=True),
        sa.Column("task_id", sa.String(26), nullable=False),
    )
    op.create_index("ix_workflow_nodes_task", "workflow_nodes", ["task_id"])


def downgrade() -> None:
    op.drop_table("workflow_nodes")
    op.drop_table("workflows")
    op.drop_table("task_deps")
