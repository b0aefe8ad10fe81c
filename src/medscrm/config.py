"""Settings: one class, read from the environment (prefix ``MEDSCRM_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_FILE = "medscrm.duckdb"
_DEV_SECRET = "dev-insecure-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDSCRM_", extra="ignore")

    #: SQLAlchemy URL. Default: an embedded DuckDB file in the working directory.
    #: PostgreSQL: ``postgresql+psycopg://user@host:5432/db``.
    database_url: str = ""
    #: Tenant used by the CLI when ``--tenant`` is not given.
    tenant: str = "default"
    #: ``development`` or ``production``; production refuses the default secret.
    env: str = "development"
    secret_key: str = _DEV_SECRET
    #: Largest file ``medscrm import`` accepts, in bytes (default 2 GiB).
    max_import_bytes: int = 2 * 1024**3
    #: DuckDB's memory limit (its buffer pool, spilling beyond it); bounds an import's memory.
    duckdb_memory_limit: str = "1GB"
    #: Where the event API keeps its durable spool (default: beside the DuckDB file, or ./medscrm-spool).
    spool_dir: str = ""
    #: Spooled-but-unstored bytes above which the event API answers 503 + Retry-After (back-pressure
    #: while the database is slow or down: acknowledged events stay bounded by disk, never lost).
    spool_max_backlog_mb: int = 1024
    #: ``/api/v1/health`` answers 503 ``degraded`` when spooled events wait and storage has not
    #: advanced for this many seconds (the flusher is stalled or failing).
    ingest_stall_seconds: float = 30.0

    @field_validator("database_url", mode="before")
    @classmethod
    def _default_url(cls, v: str | None) -> str:
        if not v:
            return f"duckdb:///{Path(os.getcwd(), DEFAULT_DB_FILE)}"
        return v

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env == "production" and self.secret_key == _DEV_SECRET:
            raise ValueError("MEDSCRM_SECRET_KEY must be set in production (MEDSCRM_ENV=production)")
        return self

    @property
    def backend(self) -> str:
        """``duckdb`` or ``postgresql``."""
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


@lru_cache
def get_settings() -> Settings:
    return Settings()
