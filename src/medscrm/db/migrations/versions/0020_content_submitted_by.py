"""content: who submitted an item for review

``content_items`` gains ``submitted_by`` (nullable): the person who sent the item to MLR review, who
may not approve it (four-eyes), as its author may not.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("content_items", sa.Column("submitted_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("content_items", "submitted_by")
