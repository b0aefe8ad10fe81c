"""Settings: one class, read from the environment (prefix ``MEDSCRM_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medscrm.common import MedscrmError

DEFAULT_DB_FILE = "medscrm.duckdb"
_DEV_SECRET = "dev-insecure-secret-change-me"
#: values of MEDSCRM_ENV (compared case-insensitively)
ENVIRONMENTS = ("development", "production")
#: a production secret key needs at least this many characters ...
MIN_SECRET_LENGTH = 32
#: ... and at least this many distinct ones (a repeated or sequential pattern is not a key)
MIN_SECRET_DISTINCT = 12


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` is too weak to sign console sessions and seal credentials in production, or None.

    The checks are cheap heuristics against the usual mistakes (empty, the development value, short,
    one character repeated, a short pattern repeated); a key from ``python -c "import secrets;
    print(secrets.token_urlsafe(32))"`` passes them all."""
    if not key:
        return "it is empty"
    if key == _DEV_SECRET:
        return "it is the development default"
    if len(key) < MIN_SECRET_LENGTH:
        return f"it has {len(key)} characters; at least {MIN_SECRET_LENGTH} are required"
    if len(set(key)) < MIN_SECRET_DISTINCT:
        return f"it has only {len(set(key))} distinct characters; at least {MIN_SECRET_DISTINCT} are required"
    for period in range(1, len(key) // 2 + 1):  # the whole key is a shorter unit repeated
        if len(key) % period == 0 and key[:period] * (len(key) // period) == key:
            return f"it is a {period}-character pattern repeated"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDSCRM_", extra="ignore")

    #: SQLAlchemy URL. Default: an embedded DuckDB file in the working directory.
    #: PostgreSQL: ``postgresql+psycopg://user@host:5432/db``.
    database_url: str = ""
    #: Tenant used by the CLI when ``--tenant`` is not given.
    tenant: str = "default"
    #: API token the CLI uses to read through a running ``medscrm serve`` that holds the embedded
    #: database (empty: the token serve wrote into the server file beside the database).
    api_token: str = ""
    #: The address HCPs reach this server at (tracked links ``/r/…`` and view beacons ``/b/…`` in
    #: messages are built on it; a tenant's outreach policy ``tracking_base_url`` overrides it).
    #: Default: where ``medscrm serve`` listens by default, for local trials.
    public_base_url: str = "http://127.0.0.1:8000"
    #: ``development`` or ``production`` (any case); production refuses a missing or weak secret key.
    env: str = "development"
    secret_key: str = _DEV_SECRET
    #: Earlier secret keys, comma-separated: sealed credentials made with them can still be read
    #: (``medscrm secrets rotate`` re-seals them with ``secret_key``).
    old_secret_keys: str = ""
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
    #: Outbound webhooks: allow subscription URLs on private, loopback or link-local addresses
    #: (off by default: a tenant must not make the server call into its own network; tests turn it on).
    webhooks_allow_private: bool = False
    #: Audit guard: keep each request that succeeded on a route that must be audited but left no complete
    #: audit row (it is always logged and counted) so a test can fail on it. On in the test suite.
    audit_strict: bool = False
    #: Outbound webhooks: attempts per delivery before it is marked dead (replay re-queues it).
    webhooks_max_attempts: int = 8
    #: Outbound webhooks: the first retry waits about this long; each next one twice as long (jittered).
    webhooks_backoff_seconds: float = 30.0
    #: Outbound webhooks: the longest wait between two attempts.
    webhooks_backoff_max_seconds: float = 6 * 3600.0
    #: Outbound webhooks: seconds for the whole HTTP request to the subscriber (connect + answer).
    webhooks_timeout_seconds: float = 10.0
    #: Outbound webhooks: run the dispatcher inside ``medscrm serve`` on DuckDB (``medscrm worker``
    #: always runs it).
    webhooks_dispatcher: bool = True
    #: The segment refresher inside ``medscrm serve`` (segments follow new events within a second or
    #: so); off: memberships change on recomputes only (``medscrm segments refresh``).
    segment_refresher: bool = True
    #: The refresher also recomputes the behaviour tags and scores of persons with new events; off:
    #: they wait for the daily scores batch.
    realtime_scores: bool = True
    #: The journey runner inside ``medscrm serve`` on DuckDB (on PostgreSQL ``medscrm worker`` runs it).
    journey_runner: bool = True
    #: Identity resolution inside ``medscrm serve``: new source records (``/v1/identify``, imports)
    #: are linked into persons incrementally within seconds (after a first ``medscrm identity run``).
    identity_follower: bool = True
    #: A YAML file that overrides the behaviour model's configuration (tags, scores, stages;
    #: docs/scores.md); empty: the built-in defaults.
    scores_config: str = ""
    #: When the daily scores batch runs: ``HH:MM`` in China time, or ``off``.
    scores_batch_at: str = "02:00"
    #: Retention (docs/privacy.md): when the daily retention run deletes/anonymises expired data,
    #: ``HH:MM`` in China time, or ``off`` (the default: deleting is irreversible, so a company turns
    #: it on after reviewing its policies and a dry run; ``medscrm retention run`` works either way).
    retention_at: str = "off"
    #: The legal minimum of audit-log retention in days (PIPL Art. 56: processing records are kept
    #: at least three years); a policy keeping audit rows shorter is refused.
    retention_audit_floor_days: int = 1095
    #: Log lines of ``medscrm serve``: ``text`` or ``json`` (one object per line). Empty: ``json`` in
    #: production, ``text`` in development. Every line of a request carries its request id.
    log_format: str = ""
    #: uvicorn's access log (one line per request, in the log format above): ``on`` or ``off``.
    access_log: str = "off"
    #: Bearer token that ``/metrics`` requires (from any address) when set; empty: ``/metrics`` answers
    #: loopback clients (127.0.0.0/8, ::1) only.
    metrics_token: str = ""
    #: prometheus-client's multiprocess directory for ``serve --workers N`` (emptied at start).
    #: Empty: ``metrics`` inside the spool directory. ``PROMETHEUS_MULTIPROC_DIR``, when set, wins.
    metrics_dir: str = ""
    #: ``1``: OpenTelemetry tracing of every request (needs the ``otel`` extra); the exporter is
    #: configured by the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_SERVICE_NAME`` variables.
    otel: bool = False

    @field_validator("database_url", mode="before")
    @classmethod
    def _default_url(cls, v: str | None) -> str:
        if not v:
            return f"duckdb:///{Path(os.getcwd(), DEFAULT_DB_FILE)}"
        return v

    @field_validator("env", mode="before")
    @classmethod
    def _known_env(cls, v: str | None) -> str:
        env = (v or "development").strip().lower()
        if env not in ENVIRONMENTS:
            raise ValueError(f"MEDSCRM_ENV: {v!r} is not one of {', '.join(ENVIRONMENTS)} (any case)")
        return env

    @field_validator("log_format", mode="before")
    @classmethod
    def _known_log_format(cls, v: str | None) -> str:
        fmt = (v or "").strip().lower()
        if fmt not in ("", "text", "json"):
            raise ValueError(f"MEDSCRM_LOG_FORMAT: {v!r} is not one of text, json")
        return fmt

    @field_validator("access_log", mode="before")
    @classmethod
    def _on_off(cls, v: str | bool | None) -> str:
        value = str(v if v is not None else "off").strip().lower()
        if value in ("on", "1", "true", "yes"):
            return "on"
        if value in ("off", "0", "false", "no", ""):
            return "off"
        raise ValueError(f"MEDSCRM_ACCESS_LOG: {v!r} is not one of on, off")

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        if self.env == "production":
            problem = secret_key_problem(self.secret_key)
            if problem:
                raise ValueError(
                    f"MEDSCRM_SECRET_KEY: refused in production (MEDSCRM_ENV=production) because {problem}; "
                    f"set a random key of at least {MIN_SECRET_LENGTH} characters, e.g. "
                    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
                )
            weak = [k for k in self.old_keys if k == _DEV_SECRET]
            if weak:
                raise ValueError(
                    "MEDSCRM_OLD_SECRET_KEYS: the development key may not open sealed credentials in production"
                )
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def log_style(self) -> str:
        """``MEDSCRM_LOG_FORMAT``, or its default for the environment (json in production)."""
        return self.log_format or ("json" if self.is_production else "text")

    @property
    def old_keys(self) -> list[str]:
        """``MEDSCRM_OLD_SECRET_KEYS`` as a list (blank entries dropped)."""
        return [k.strip() for k in self.old_secret_keys.split(",") if k.strip()]

    @property
    def backend(self) -> str:
        """``duckdb`` or ``postgresql``."""
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


class ConfigError(MedscrmError):
    """The environment's MEDSCRM_* settings are invalid; the message names the variable and the reason."""


def _explain(exc: ValidationError) -> str:
    """One line per problem, each naming the variable (pydantic's own text names the field only)."""
    out = []
    for e in exc.errors():
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        name = "MEDSCRM_" + ".".join(str(x) for x in e.get("loc", ())).upper()
        out.append(msg if msg.startswith("MEDSCRM_") or name == "MEDSCRM_" else f"{name}: {msg}")
    return "; ".join(out)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
