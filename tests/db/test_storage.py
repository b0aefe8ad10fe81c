"""Schema and storage guarantees on both engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from medscrm.common import new_id, utcnow
from medscrm.db import upgrade_to_head
from medscrm.db.migrate import current_revision, head_revision
from medscrm.db.schema import metadata, source_records


def test_migrations_reach_head_and_are_idempotent(engine):
    assert current_revision(engine) == head_revision()
    assert upgrade_to_head(engine) is False
    names = set(sa.inspect(engine).get_table_names())
    assert {
        "tenants",
        "sources",
        "users",
        "api_tokens",
        "source_records",
        "persons",
        "identities",
        "events",
        "quarantine",
        "audit_log",
        "imports",
    } <= names


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql(pg_engine):
    with pg_engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), metadata)
    diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name.startswith("ix_events_"))]
    assert diff == []


@pytest.mark.postgres
def test_source_records_are_append_only_on_postgresql(pg_engine):
    rid = new_id("sr")
    with pg_engine.begin() as c:
        c.execute(
            source_records.insert().values(
                id=rid,
                tenant_id="tn_append_only",
                source_id="s",
                record_key="k",
                row_hash="h",
                raw={"a": 1},
                received_at=utcnow(),
            )
        )
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), pg_engine.begin() as c:
        c.execute(source_records.update().where(source_records.c.id == rid).values(name="x"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), pg_engine.begin() as c:
        c.execute(source_records.delete().where(source_records.c.id == rid))


def test_analyze_refreshes_planner_statistics_after_a_bulk_write(tenant):
    """A fresh tenant's bulk-written tables must not look empty to PostgreSQL's planner."""
    from medscrm.db.bulk import analyze, append_rows
    from medscrm.db.schema import persons

    now = utcnow()
    rows = [
        {
            "id": new_id("per"),
            "tenant_id": tenant.id,
            "person_type": "hcp",
            "status": "active",
            "attributes": {"name": f"医生{i}"},
            "lineage": {},
            "created_at": now,
            "updated_at": now,
        }
        for i in range(1200)
    ]
    with tenant.engine.begin() as c:
        append_rows(c, persons, rows)
        analyze(c, persons)  # a no-op on DuckDB
    if tenant.engine.dialect.name == "postgresql":
        with tenant.engine.connect() as c:
            reltuples = c.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE relname = 'persons'")
            ).scalar_one()
        assert reltuples >= 1200
