"""HCP360 scores, stages, behaviour tags, micro-segments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 12:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "person_scores",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("score_key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", _json(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "person_id", "score_key", name=op.f("pk_person_scores")),
    )
    op.create_index(
        op.f("ix_person_scores_tenant_id_score_key_value"),
        "person_scores",
        ["tenant_id", "score_key", "value"],
        unique=False,
    )
    op.create_table(
        "micro_segments",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("description_zh", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("top_features", _json(), nullable=True),
        sa.Column("centroid", _json(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "label", name=op.f("pk_micro_segments")),
    )


def downgrade() -> None:
    op.drop_table("micro_segments")
    op.drop_index(op.f("ix_person_scores_tenant_id_score_key_value"), table_name="person_scores")
    op.drop_table("person_scores")
