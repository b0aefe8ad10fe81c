"""segment freshness: scheduled full recompute interval; PostgreSQL index on events.received_at

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 12:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("refresh_every_minutes", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # the segment refresher follows newly stored events by received_at (DuckDB prunes by zone maps)
        op.create_index("ix_events_received_at", "events", ["received_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_events_received_at")
    op.drop_column("segments", "refresh_every_minutes")
