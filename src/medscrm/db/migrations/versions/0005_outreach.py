"""content library, channels, sends, guardrails

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "channel_configs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("provider", sa.String(length=24), nullable=False),
        sa.Column("settings", _json(), nullable=True),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "channel", name=op.f("pk_channel_configs")),
    )
    op.create_table(
        "consent_history",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("old_status", sa.String(length=16), nullable=True),
        sa.Column("new_status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("evidence", _json(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_history")),
    )
    op.create_index(
        op.f("ix_consent_history_tenant_id_person_id"),
        "consent_history",
        ["tenant_id", "person_id"],
        unique=False,
    )
    op.create_table(
        "consents",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("evidence", _json(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "person_id", "channel", "purpose", name=op.f("pk_consents")),
    )
    op.create_table(
        "content_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("therapy_area", sa.String(length=100), nullable=True),
        sa.Column("product", sa.String(length=100), nullable=True),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("prescription", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("topics", _json(), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("template", _json(), nullable=True),
        sa.Column("approval_code", sa.String(length=100), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_content_items_tenant_id_key")),
    )
    op.create_index(
        op.f("ix_content_items_tenant_id_status"), "content_items", ["tenant_id", "status"], unique=False
    )
    op.create_table(
        "outreach_policies",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("policy", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_outreach_policies")),
    )
    op.create_table(
        "persons_dnc",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "person_id", name=op.f("pk_persons_dnc")),
    )
    op.create_table(
        "sends",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("content_id", sa.String(length=40), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", _json(), nullable=True),
        sa.Column("variables", _json(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("handed_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sends")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name=op.f("uq_sends_tenant_id_idempotency_key")),
    )
    op.create_index(op.f("ix_sends_status_not_before"), "sends", ["status", "not_before"], unique=False)
    op.create_index(
        op.f("ix_sends_tenant_id_content_id_status"),
        "sends",
        ["tenant_id", "content_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_sends_tenant_id_person_id_channel_created_at"),
        "sends",
        ["tenant_id", "person_id", "channel", "created_at"],
        unique=False,
    )
    op.create_table(
        "tracked_links",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("send_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=40), nullable=False),
        sa.Column("content_id", sa.String(length=40), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_tracked_links")),
    )


def downgrade() -> None:
    op.drop_table("tracked_links")
    op.drop_index(op.f("ix_sends_tenant_id_person_id_channel_created_at"), table_name="sends")
    op.drop_index(op.f("ix_sends_tenant_id_content_id_status"), table_name="sends")
    op.drop_index(op.f("ix_sends_status_not_before"), table_name="sends")
    op.drop_table("sends")
    op.drop_table("persons_dnc")
    op.drop_table("outreach_policies")
    op.drop_index(op.f("ix_content_items_tenant_id_status"), table_name="content_items")
    op.drop_table("content_items")
    op.drop_table("consents")
    op.drop_index(op.f("ix_consent_history_tenant_id_person_id"), table_name="consent_history")
    op.drop_table("consent_history")
    op.drop_table("channel_configs")
