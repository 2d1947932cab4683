"""An index for the retention purge of schedule fire history (``scheduler/retention.py``).

``ix_schedule_fires_outcome_recorded`` (outcome, recorded_at): the purger looks for one outcome
recorded before a cutoff (every outcome but ``buffered``); without it each pass would scan the
whole history, whose primary key starts with the tenant and the schedule's name.

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0012"


def upgrade() -> None:
    op.create_index("ix_schedule_fires_outcome_recorded", "schedule_fires",
                    ["outcome", "recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_fires_outcome_recorded", "schedule_fires")
