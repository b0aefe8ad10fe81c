"""journey definitions, versions, enrollments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 12:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("stopped_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_journeys_tenant_id_key")),
    )
    op.create_table(
        "journey_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("journey_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_versions")),
        sa.UniqueConstraint("journey_id", "version", name=op.f("uq_journey_versions_journey_id_version")),
    )
    op.create_table(
        "journey_enrollments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("journey_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_step", sa.String(length=64), nullable=True),
        sa.Column("step_state", sa.String(length=16), server_default="enter", nullable=False),
        sa.Column("next_run_at", TS, nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("visits", JSON, nullable=True),
        sa.Column("trigger_ref", sa.String(length=300), nullable=True),
        sa.Column("context", JSON, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_enrollments")),
        sa.UniqueConstraint(
            "tenant_id",
            "journey_id",
            "trigger_ref",
            name=op.f("uq_journey_enrollments_tenant_id_journey_id_trigger_ref"),
        ),
    )
    op.create_index(
        op.f("ix_journey_enrollments_status_next_run_at"),
        "journey_enrollments",
        ["status", "next_run_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_journey_enrollments_tenant_id_journey_id_person_id"),
        "journey_enrollments",
        ["tenant_id", "journey_id", "person_id"],
        unique=False,
    )
    op.create_table(
        "journey_step_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("journey_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("step_type", sa.String(length=24), nullable=False),
        sa.Column("visit", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("send_id", sa.String(length=40), nullable=True),
        sa.Column("detail", JSON, nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("executed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_step_runs")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_journey_step_runs_tenant_id_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_journey_step_runs_tenant_id_journey_id_step_id"),
        "journey_step_runs",
        ["tenant_id", "journey_id", "step_id"],
        unique=False,
    )
    op.create_table(
        "journey_triggers",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("journey_id", sa.String(length=40), nullable=False),
        sa.Column("trigger_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("watermark", TS, nullable=True),
        sa.Column("next_fire_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "journey_id", "trigger_key", name=op.f("pk_journey_triggers")),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("detail", JSON, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name=op.f("uq_tasks_tenant_id_idempotency_key")),
    )
    op.create_index(
        op.f("ix_tasks_tenant_id_assignee_status"), "tasks", ["tenant_id", "assignee", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_tenant_id_assignee_status"), table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("journey_triggers")
    op.drop_index(op.f("ix_journey_step_runs_tenant_id_journey_id_step_id"), table_name="journey_step_runs")
    op.drop_table("journey_step_runs")
    op.drop_index(
        op.f("ix_journey_enrollments_tenant_id_journey_id_person_id"), table_name="journey_enrollments"
    )
    op.drop_index(op.f("ix_journey_enrollments_status_next_run_at"), table_name="journey_enrollments")
    op.drop_table("journey_enrollments")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
