"""Storage: one SQLAlchemy engine behind ``MEDSCRM_DATABASE_URL`` (DuckDB or PostgreSQL)."""

from medscrm.db.engine import get_engine, make_engine, reset_engines
from medscrm.db.migrate import upgrade_to_head

__all__ = ["get_engine", "make_engine", "reset_engines", "upgrade_to_head"]
