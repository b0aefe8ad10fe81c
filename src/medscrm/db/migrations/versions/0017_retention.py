"""retention: per-tenant policies per data category, the log of runs

``retention_policies`` (keep days and action per category; a category without a row follows the
shipped defaults) and ``retention_runs``. On PostgreSQL the append-only trigger of
``source_records`` / ``events`` also lets a retention run through when its transaction says so
(``SET LOCAL medscrm.retention = 'on'``, set only by ``medscrm.privacy.retention``): deletes, and
the updates that anonymise an expired row. Erasure's ``medscrm.erasure`` keeps working as before.

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-07 14:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

TRIGGER_WITH_RETENTION = """
CREATE OR REPLACE FUNCTION medscrm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND (current_setting('medscrm.erasure', true) = 'on'
                           OR current_setting('medscrm.retention', true) = 'on') THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND current_setting('medscrm.retention', true) = 'on' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
"""

TRIGGER_ERASURE_ONLY = """
CREATE OR REPLACE FUNCTION medscrm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('medscrm.erasure', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("patterns", JSON, nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "category", name=op.f("pk_retention_policies")),
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_index(
        op.f("ix_retention_runs_tenant_id_started_at"), "retention_runs", ["tenant_id", "started_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TRIGGER_WITH_RETENTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TRIGGER_ERASURE_ONLY)
    op.drop_index(op.f("ix_retention_runs_tenant_id_started_at"), table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_table("retention_policies")
