"""proof of every send: the consent, the content approval and the guardrail checks on each send

``sends`` gains nullable columns: ``consent_history_id`` / ``consent_version`` / ``consent_hash``
(the consent change the send relied on), ``approval_code`` / ``approval_expires_at`` (the content
approval at send time) and ``checks`` (each guardrail check's name, result and compared values).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

COLUMNS = (
    ("consent_history_id", sa.String(length=40)),
    ("consent_version", sa.Integer()),
    ("consent_hash", sa.String(length=64)),
    ("approval_code", sa.String(length=100)),
    ("approval_expires_at", TS),
    ("checks", JSON),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("sends", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("sends", name)
