"""The behaviour model's tag definitions and the lock that serialises its writers of one tenant."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from medscrm.scores.model import TAGS
from medscrm.tags import service as tags

OWNER = "medscrm.scores"
CATEGORY = "behaviour_model"


def ensure_definitions(conn: sa.Connection, *, tenant_id: str, now: dt.datetime | None = None) -> None:
    """Define the model's tags (category behaviour_model) where missing or changed."""
    have = {d["key"]: d for d in tags.list_definitions(conn, tenant_id=tenant_id)}
    for key, (zh, en, refresh, desc) in TAGS.items():
        d = have.get(key)
        want = {"name_zh": zh, "name_en": en, "refresh": refresh, "description": desc, "category": CATEGORY}
        if d and all(d.get(k) == v for k, v in want.items()) and d.get("value_type") == "string":
            continue
        tags.define(
            conn,
            tenant_id=tenant_id,
            key=key,
            value_type="string",
            owner=OWNER,
            now=now,
            **want,
        )


def lock_tenant(conn: sa.Connection, *, tenant_id: str) -> None:
    """Serialise the model's writers of one tenant (batch, real-time refreshes, clustering) until the
    end of the caller's transaction: on PostgreSQL a transaction-level advisory lock, so a real-time
    refresh waits for a running batch instead of colliding with it on ``person_tags``. DuckDB runs its
    writers optimistically (a conflict rolls one back; the refresher retries it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"medscrm.scores:{tenant_id}")))
        )
