"""The scheduled batch of the behaviour tags and scores, run by ``medscrm serve`` itself.

Scores decay and stages age with time alone (active → dormant → churned), so every tenant needs the
batch (:func:`medscrm.scores.service.refresh_all`) now and then even without new events; real-time
refreshes (:mod:`medscrm.scores.realtime`) only touch persons with new events. The segment refresher's
slow lane calls :func:`run_due` with its own schedule: once a day at ``MEDSCRM_SCORES_BATCH_AT``
(China time, default ``02:00``; ``off`` leaves the batch to ``medscrm scores refresh`` on cron).

Each run is recorded in the audit log (action ``scores.batch``, its ``occurred_at`` = the batch's
clock), which is also how a restarted server knows what was done: a tenant is due when its last run
is older than the latest scheduled time, so a server that was down at 02:00 catches up when it
starts, and a tenant never scored gets its batch at once. ``medscrm scores refresh`` records its runs
the same way, so a manual run counts.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from medscrm.accounts.service import audit_row
from medscrm.common import as_utc, parse_daily_time, utcnow
from medscrm.config import get_settings
from medscrm.db.schema import audit_log, tenants
from medscrm.scores.service import refresh_all_committed

log = logging.getLogger(__name__)

ENV = "MEDSCRM_SCORES_BATCH_AT"
DEFAULT_AT = "02:00"
ACTION = "scores.batch"
CHINA = ZoneInfo("Asia/Shanghai")


def parse_at(text: str | None) -> dt.time | None:
    """``HH:MM`` (China time) → a time; ``off``/``none``/empty → None (no scheduled batch)."""
    return parse_daily_time(text, ENV, "02:00")


def configured_at() -> dt.time | None:
    return parse_at(get_settings().scores_batch_at)


def last_slot(now: dt.datetime, at: dt.time) -> dt.datetime:
    """The latest scheduled time at or before ``now`` (UTC)."""
    local = now.astimezone(CHINA)
    slot = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if slot > local:
        slot -= dt.timedelta(days=1)
    return slot.astimezone(dt.UTC)


def last_runs(conn: sa.Connection, tenant_id: str | None = None) -> dict[str, dt.datetime]:
    """Tenant id → when its last batch ran (from the audit log)."""
    a = audit_log
    q = sa.select(a.c.tenant_id, sa.func.max(a.c.occurred_at)).where(a.c.action == ACTION)
    if tenant_id is not None:
        q = q.where(a.c.tenant_id == tenant_id)
    out = {}
    for tid, at in conn.execute(q.group_by(a.c.tenant_id)).all():
        out[tid] = as_utc(at)
    return out


def due_tenants(
    conn: sa.Connection, *, now: dt.datetime, at: dt.time, tenant_id: str | None = None
) -> list[str]:
    """Tenants whose last batch is older than the latest scheduled time (or never ran)."""
    slot = last_slot(now, at)
    q = sa.select(tenants.c.id).order_by(tenants.c.id)
    if tenant_id is not None:
        q = q.where(tenants.c.id == tenant_id)
    runs = last_runs(conn, tenant_id)
    return [t for t in conn.execute(q).scalars() if runs.get(t) is None or runs[t] < slot]


def record(conn: sa.Connection, *, tenant_id: str, now: dt.datetime, actor: str, res: dict[str, Any]) -> None:
    """The audit row of one batch (``occurred_at`` = the batch's clock)."""
    row = audit_row(
        tenant_id=tenant_id,
        actor=actor,
        action=ACTION,
        object_type="scores",
        detail={k: res.get(k) for k in ("persons", "changed", "scores_written", "seconds")},
    )
    row["occurred_at"] = now
    conn.execute(audit_log.insert().values(**row))


def run_batch(
    engine: sa.Engine, *, tenant_id: str, now: dt.datetime | None = None, actor: str = "scheduler"
) -> dict[str, Any]:
    """One tenant's batch, a transaction per id range of persons (bounded memory on big tenants),
    recorded in the audit log in the last one."""

    now = now or utcnow()
    return refresh_all_committed(
        engine,
        tenant_id=tenant_id,
        now=now,
        last=lambda conn, res: record(conn, tenant_id=tenant_id, now=now, actor=actor, res=res),
    )


def run_due(
    engine: sa.Engine,
    *,
    now: dt.datetime | None = None,
    at: dt.time | None = None,
    tenant_id: str | None = None,
) -> list[dict[str, Any]]:
    """Run the batch of every due tenant (one transaction each; a failing tenant is logged and
    retried at the next call). Returns ``[{tenant_id, persons, changed, seconds} | {tenant_id, error}]``."""
    if at is None:
        return []
    now = now or utcnow()
    with engine.connect() as conn:
        todo = due_tenants(conn, now=now, at=at, tenant_id=tenant_id)
    out = []
    for tid in todo:
        try:
            res = run_batch(engine, tenant_id=tid, now=now)
            out.append({"tenant_id": tid, **{k: res[k] for k in ("persons", "changed", "seconds")}})
            log.info(
                "scheduled scores batch of tenant %s: %s persons, %s changed",
                tid,
                res["persons"],
                res["changed"],
            )
        except Exception as exc:  # one tenant must not stop the others
            log.warning("scheduled scores batch of tenant %s failed: %s", tid, exc)
            out.append({"tenant_id": tid, "error": f"{type(exc).__name__}: {exc}"})
    return out
