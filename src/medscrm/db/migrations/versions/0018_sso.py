"""single sign-on (OpenID Connect): per-tenant provider settings and the subjects that sign in

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sso_configs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sso_configs")),
    )
    op.create_table(
        "sso_identities",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("groups", _json(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "issuer", "subject", name=op.f("pk_sso_identities")),
    )


def downgrade() -> None:
    op.drop_table("sso_identities")
    op.drop_table("sso_configs")
