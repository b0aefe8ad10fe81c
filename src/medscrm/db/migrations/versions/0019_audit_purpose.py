"""audit rows name the purpose of the processing they record

``audit_log`` gains a nullable ``purpose`` (see ``medscrm.accounts.purposes``); rows written before
this revision keep it empty.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("purpose", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_log", "purpose")
