"""identities by person (PostgreSQL): the profile API lists a person's identities on every read

Without it PostgreSQL scanned the whole table (2.7 ms at 30k identities, growing with the tenant).
DuckDB does not use an ART index for this two-column filter (its plan stays a zone-map-pruned scan)
and an ART index costs memory and bulk-load time, so DuckDB does without.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 20:10:00
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_identities_tenant_id_person_id", "identities", ["tenant_id", "person_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_identities_tenant_id_person_id", table_name="identities")
