"""HCP360 scores, stages, behaviour tags, micro-segments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 12:30:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401
from sqlalchemy.dialects import postgresql  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
