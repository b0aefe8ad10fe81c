"""Engine creation and the small backend API the bulk paths need.

DuckDB is reached through ``duckdb_engine``; PostgreSQL through psycopg 3. Everything that is not
plain SQLAlchemy (bulk appends) goes through :mod:`medscrm.db.bulk`, which dispatches on
``engine.dialect.name`` and fails loudly, naming the backend, for anything else.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from medscrm.config import get_settings

SUPPORTED = ("duckdb", "postgresql")
_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


class UnsupportedBackend(RuntimeError):
    pass


def make_engine(url: str) -> sa.Engine:
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if backend not in SUPPORTED:
        raise UnsupportedBackend(
            f"MEDSCRM_DATABASE_URL uses {backend!r}; supported: duckdb:///path, postgresql+psycopg://..."
        )
    if backend == "postgresql" and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if backend == "duckdb":
        config = {"memory_limit": get_settings().duckdb_memory_limit}
        return sa.create_engine(
            url, poolclass=sa.pool.QueuePool, pool_size=8, max_overflow=16, connect_args={"config": config}
        )
    return sa.create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)


def get_engine(url: str | None = None) -> sa.Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    url = url or get_settings().database_url
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _engines[url] = make_engine(url)
        return eng


def reset_engines() -> None:
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()
