"""Engine creation and the small backend API the bulk paths need.

DuckDB is reached through ``duckdb_engine``; PostgreSQL through psycopg 3. Everything that is not
plain SQLAlchemy (bulk appends) goes through :mod:`medscrm.db.bulk`, which dispatches on
``engine.dialect.name`` and fails loudly, naming the backend, for anything else.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from medscrm.config import get_settings

SUPPORTED = ("duckdb", "postgresql")
_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


class UnsupportedBackend(RuntimeError):
    pass


#: connections per process: kept open / opened beyond that under load
POOL_SIZE, POOL_OVERFLOW = 10, 10


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
        eng = sa.create_engine(
            url,
            poolclass=sa.pool.QueuePool,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            connect_args={"config": config},
        )
        # duckdb_engine opts out of SQLAlchemy's compiled-statement cache (it never declared support);
        # its compiler is PostgreSQL's, which caches safely, and without the cache every statement is
        # compiled anew (~0.5 ms each; a profile read is 7 statements). The whole suite runs with it on.
        eng.dialect.__dict__["_supports_statement_cache"] = True
        return eng
    # at most 20 connections per process: `serve --workers 4` stays within PostgreSQL's default 100,
    # and the API's thread pool is sized to match (threads beyond it would only wait for a connection)
    return sa.create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_pre_ping=True)


def default_spool_dir(url: sa.URL | str) -> Path:
    """Where the event API spools what it has acknowledged but not stored yet: MEDSCRM_SPOOL_DIR,
    else beside the DuckDB file (``FILE.spool``), else ``./medscrm-spool`` (PostgreSQL)."""
    configured = get_settings().spool_dir
    if configured:
        return Path(configured)
    url = sa.make_url(url)
    if url.get_backend_name() == "duckdb" and url.database and url.database != ":memory:":
        return Path(url.database + ".spool")
    return Path.cwd() / "medscrm-spool"


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
