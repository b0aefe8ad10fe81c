"""data-subject requests (PIPL Arts. 44–47): the request log, erasure tombstones, restrictions

Also: PostgreSQL indexes by person on the tables an export or erasure reads by person (DuckDB does
without, as in 0008: its plans for these filters are zone-map-pruned scans), and the append-only
trigger of ``source_records`` / ``events`` lets an erasure through when the transaction says so
(``SET LOCAL medscrm.erasure = 'on'``, set only by ``medscrm.privacy``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

#: table -> index name of the (tenant_id, person_id) indexes added on PostgreSQL
PERSON_INDEXES = {
    "segment_history": "ix_segment_history_tenant_id_person_id",
    "tracked_links": "ix_tracked_links_tenant_id_person_id",
    "journey_enrollments": "ix_journey_enrollments_tenant_id_person_id",
    "journey_step_runs": "ix_journey_step_runs_tenant_id_person_id",
    "tasks": "ix_tasks_tenant_id_person_id",
}


def upgrade() -> None:
    op.create_table(
        "dsr_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=True),
        sa.Column("identifier_type", sa.String(length=32), nullable=True),
        sa.Column("identifier_hash", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("refusal_code", sa.String(length=32), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("certificate", JSON, nullable=True),
        sa.Column("certificate_sha256", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_requests")),
    )
    op.create_index(
        op.f("ix_dsr_requests_tenant_id_created_at"),
        "dsr_requests",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "dsr_tombstones",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("identifier_type", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("suppressed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_suppressed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "key_hash", name=op.f("pk_dsr_tombstones")),
    )
    op.create_table(
        "person_restrictions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "person_id", "kind", name=op.f("pk_person_restrictions")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table, name in PERSON_INDEXES.items():
            op.create_index(name, table, ["tenant_id", "person_id"])
        op.execute(
            """
            CREATE OR REPLACE FUNCTION medscrm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'DELETE' AND current_setting('medscrm.erasure', true) = 'on' THEN
                RETURN OLD;
              END IF;
              RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
            END $$;
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION medscrm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
            END $$;
            """
        )
        for table, name in PERSON_INDEXES.items():
            op.drop_index(name, table_name=table)
    op.drop_table("person_restrictions")
    op.drop_table("dsr_tombstones")
    op.drop_index(op.f("ix_dsr_requests_tenant_id_created_at"), table_name="dsr_requests")
    op.drop_table("dsr_requests")
