"""Alembic migrations, run programmatically on DuckDB and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock that serialises migrations across processes ("meds" in ASCII)
MIGRATION_LOCK_KEY = 0x6D656473


class DuckDBImpl(DefaultImpl):
    """Lets Alembic drive DuckDB (its DDL is PostgreSQL-like)."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: sa.Engine) -> bool:
    """Bring the schema to the newest revision; returns True if anything ran.

    Safe to run from several processes at once on PostgreSQL (``serve --workers N``, ``medscrm
    worker`` and a ``medscrm db upgrade`` job all starting together): each waits for a transaction-
    scoped advisory lock, reads the revision again under it, and only the first migrates. DuckDB
    needs no lock: one process at a time can open its file."""
    head = head_revision()
    if current_revision(engine) == head:
        return False
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            if MigrationContext.configure(conn).get_current_revision() == head:
                return False
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return True
