"""Retention: data leaves when its purpose ends (PIPL Arts. 19 and 47).

A tenant's **policies** say, per data category, how many days rows are kept and what happens after:
``delete`` (the row goes) or ``anonymise`` (the row stays for aggregates; its personal fields and
payloads are blanked). A category without a policy row follows the shipped default
(``privacy/data/retention.yaml``). Categories (:data:`CATEGORIES`):

* ``events`` — every event (or those whose name matches the policy's globs), by ``timestamp``;
* ``health`` — events carrying health data (sensitive, PIPL Art. 28), recognised by event-name globs;
* ``source_records`` — the raw payload of source records (anonymise only: the normalised fields stay
  as the golden record's lineage; erasing a person removes them);
* ``quarantine`` — quarantined rows and their payloads;
* ``webhook_deliveries`` — delivered or dead deliveries (payloads) and their attempts;
* ``sends`` — finished sends (variables, detail, the person) and their tracked links;
* ``audit`` — audit rows, never kept shorter than the legal floor
  (``MEDSCRM_RETENTION_AUDIT_FLOOR_DAYS``, default 1095 days: PIPL Art. 56).

A policy below a floor (:func:`floors`) is refused with the category and the floor named. Rows of
persons under legal hold (:mod:`medscrm.privacy.service`) are never touched: they are counted as
held. :func:`run` reports per category (rows, oldest and newest affected, held) and, unless it is a
dry run, deletes or anonymises in batches, a transaction each (on PostgreSQL with
``SET LOCAL medscrm.retention = 'on'``, which the append-only trigger of ``events`` and
``source_records`` lets through, as it does ``medscrm.erasure``). Every run leaves a
``retention_runs`` row and an audit row (``retention.run``); every policy change an audit row with
the old and the new value (``retention.policy``). :func:`run_due` is the daily schedule, run by the
segment refresher's slow lane when ``MEDSCRM_RETENTION_AT`` is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import sqlalchemy as sa
import yaml

from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound, as_utc, new_id, parse_daily_time, utcnow
from medscrm.config import get_settings
from medscrm.db import schema as s
from medscrm.persons.restrictions import LEGAL_HOLD
from medscrm.privacy.tables import PERSON_TABLES, Subject, as_text
from medscrm.scores.schedule import last_slot

log = logging.getLogger(__name__)

ACTIONS = ("delete", "anonymise")
#: rows per transaction of a real run
BATCH = 5000
POLICY_ACTION = "retention.policy"
RUN_ACTION = "retention.run"
ENV_AT = "MEDSCRM_RETENTION_AT"


# --- categories ------------------------------------------------------------------------------------
def _like(glob: str) -> str:
    """An event-name glob (``*`` any run, ``?`` one character) as a LIKE pattern (escape ``\\``)."""
    out = []
    for ch in glob:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _names(patterns: list[str]) -> sa.ColumnElement[bool]:
    if not patterns:
        return sa.false()
    return sa.or_(*[s.events.c.event.like(_like(p), escape="\\") for p in patterns])


def _empty_json(col: sa.ColumnElement) -> sa.ColumnElement[bool]:
    return sa.or_(col.is_(None), as_text(col).in_(["{}", "null"]))


@dataclass(frozen=True)
class Category:
    """How one data category is found and expired: its table, the time its age counts from, the
    actions it allows, which rows are in scope, what anonymising sets and which rows still need it,
    and the rows of other tables that go with a deleted row."""

    key: str
    table: sa.Table
    ts: str
    actions: tuple[str, ...]
    #: the PERSON_TABLES entry that finds a held person's rows in ``table``
    person_table: str
    scope: Callable[[dict[str, Any]], sa.ColumnElement[bool]] = lambda _p: sa.true()
    anonymise: dict[str, Any] = field(default_factory=dict)
    #: rows not anonymised yet (an anonymised row is not counted again)
    pending: Callable[[], sa.ColumnElement[bool]] = lambda: sa.true()
    #: delete the dependent rows of these ids (before the rows themselves)
    cascade: Callable[[sa.Connection, str, list[str]], None] | None = None
    uses_patterns: bool = False


_ev = s.events.c
_EVENT_PERSONAL = ("user_id", "anonymous_id", "previous_id", "group_id", "person_id")
_EVENT_PAYLOADS = ("properties", "traits", "context")


def _event_anonymise() -> dict[str, Any]:
    return {c: sa.null() for c in (*_EVENT_PERSONAL, *_EVENT_PAYLOADS)}


def _event_pending() -> sa.ColumnElement[bool]:
    return sa.or_(
        *[_ev[c].isnot(None) for c in _EVENT_PERSONAL], *[~_empty_json(_ev[c]) for c in _EVENT_PAYLOADS]
    )


def _delete_attempts(conn: sa.Connection, tenant_id: str, ids: list[str]) -> None:
    a = s.webhook_attempts
    conn.execute(sa.delete(a).where(a.c.tenant_id == tenant_id, a.c.delivery_id.in_(ids)))


def _delete_links(conn: sa.Connection, tenant_id: str, ids: list[str]) -> None:
    t = s.tracked_links
    conn.execute(sa.delete(t).where(t.c.tenant_id == tenant_id, t.c.send_id.in_(ids)))


#: sends that are finished (queued/sending ones are still the outbox's work)
_SEND_DONE = ("sent", "delivered", "failed", "blocked", "cancelled", "unknown")

CATEGORIES: dict[str, Category] = {
    c.key: c
    for c in (
        Category(
            "events",
            s.events,
            "timestamp",
            ACTIONS,
            "events",
            scope=lambda p: _names(p["patterns"]) if p["patterns"] else sa.true(),
            anonymise=_event_anonymise(),
            pending=_event_pending,
            uses_patterns=True,
        ),
        Category(
            "health",
            s.events,
            "timestamp",
            ACTIONS,
            "events",
            scope=lambda p: _names(p["patterns"]),
            anonymise=_event_anonymise(),
            pending=_event_pending,
            uses_patterns=True,
        ),
        Category(
            "source_records",
            s.source_records,
            "received_at",
            ("anonymise",),
            "source_records",
            anonymise={"raw": {}, "attributes": sa.null()},
            pending=lambda: ~_empty_json(s.source_records.c.raw),
        ),
        Category(
            "quarantine",
            s.quarantine,
            "created_at",
            ACTIONS,
            "quarantine",
            anonymise={"payload": {}, "fixed_payload": sa.null(), "issues": sa.null()},
            pending=lambda: sa.or_(
                ~_empty_json(s.quarantine.c.payload),
                ~_empty_json(s.quarantine.c.fixed_payload),
                ~_empty_json(s.quarantine.c.issues),
            ),
        ),
        Category(
            "webhook_deliveries",
            s.webhook_deliveries,
            "created_at",
            ACTIONS,
            "webhook_deliveries",
            scope=lambda _p: s.webhook_deliveries.c.status.in_(["delivered", "dead"]),
            anonymise={"payload": {}, "last_error": sa.null()},
            pending=lambda: ~_empty_json(s.webhook_deliveries.c.payload),
            cascade=_delete_attempts,
        ),
        Category(
            "sends",
            s.sends,
            "created_at",
            ACTIONS,
            "sends",
            scope=lambda _p: s.sends.c.status.in_(_SEND_DONE),
            anonymise={
                "person_id": "",
                "variables": sa.null(),
                "detail": sa.null(),
                "error": sa.null(),
                "provider_message_id": sa.null(),
            },
            pending=lambda: s.sends.c.person_id != "",
            cascade=_delete_links,
        ),
        Category(
            "audit",
            s.audit_log,
            "occurred_at",
            ACTIONS,
            "audit_log",
            anonymise={"detail": sa.null(), "object_id": sa.null()},
            pending=lambda: sa.or_(s.audit_log.c.object_id.isnot(None), ~_empty_json(s.audit_log.c.detail)),
        ),
    )
}


# --- policies --------------------------------------------------------------------------------------
@cache
def defaults() -> dict[str, dict[str, Any]]:
    """The shipped default policy of every category (``privacy/data/retention.yaml``)."""
    text = resources.files("medscrm.privacy").joinpath("data/retention.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    out = {}
    for key in CATEGORIES:
        d = raw[key]
        out[key] = {
            "category": key,
            "keep_days": int(d["keep_days"]),
            "action": d["action"],
            "enabled": bool(d.get("enabled", True)),
            "patterns": list(d.get("patterns") or []),
        }
    return out


def floors() -> dict[str, int]:
    """The legal minimum of days per category (only the audit log has one)."""
    return {"audit": int(get_settings().retention_audit_floor_days)}


def policies(conn: sa.Connection, *, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The effective policy of every category: the tenant's row, else the default (``source``
    says which), with the category's floor and allowed actions."""
    rows = {
        r["category"]: dict(r)
        for r in conn.execute(
            sa.select(s.retention_policies).where(s.retention_policies.c.tenant_id == tenant_id)
        ).mappings()
    }
    fl = floors()
    out = {}
    for key, cat in CATEGORIES.items():
        d = dict(defaults()[key])
        r = rows.get(key)
        if r:
            d.update(
                keep_days=r["keep_days"],
                action=r["action"],
                enabled=bool(r["enabled"]),
                patterns=list(r["patterns"] or []),
                source="tenant",
                updated_by=r["updated_by"],
                updated_at=r["updated_at"],
            )
        else:
            d.update(source="default", updated_by=None, updated_at=None)
        d.update(floor_days=fl.get(key), actions=list(cat.actions), uses_patterns=cat.uses_patterns)
        out[key] = d
    return out


def check_policy(category: str, keep_days: int, action: str, patterns: list[str]) -> None:
    """Refuse what may not be configured, naming the field and the reason."""
    if category not in CATEGORIES:
        raise InvalidInput("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    cat = CATEGORIES[category]
    if action not in cat.actions:
        why = (
            "source records are the golden record's lineage; their raw payload is anonymised "
            "(erase a person to remove their records)"
            if category == "source_records"
            else f"choose one of {', '.join(cat.actions)}"
        )
        raise InvalidInput("action", f"{category}: {action!r} is not allowed: {why}")
    if not isinstance(keep_days, int) or keep_days < 1:
        raise InvalidInput("keep_days", f"{category}: keep at least 1 day (got {keep_days!r})")
    floor = floors().get(category)
    if floor is not None and keep_days < floor:
        raise InvalidInput(
            "keep_days",
            f"{category}: {keep_days} days is below the legal minimum of {floor} days "
            f"(audit rows are kept at least {floor} days; PIPL Art. 56)",
        )
    if category == "health" and not patterns:
        raise InvalidInput("patterns", "health: name the event-name patterns that carry health data")
    if patterns and not cat.uses_patterns:
        raise InvalidInput("patterns", f"{category}: patterns apply to events and health only")
    for p in patterns:
        if not p.strip() or len(p) > 200:
            raise InvalidInput(
                "patterns", f"{category}: {p!r} is not an event-name pattern (1–200 characters)"
            )


def parse_patterns(text: str | list[str] | None) -> list[str]:
    """Globs from a list or a comma/newline-separated text."""
    if text is None:
        return []
    items = text if isinstance(text, list) else re.split(r"[,\n]", text)
    return [p.strip() for p in items if p and p.strip()]


def set_policy(
    conn: sa.Connection,
    *,
    tenant_id: str,
    category: str,
    actor: str,
    keep_days: int | None = None,
    action: str | None = None,
    enabled: bool | None = None,
    patterns: list[str] | None = None,
) -> dict[str, Any]:
    """Change the tenant's policy of one category (what is not given stays); refused below a floor.
    Audited with the old and the new value."""
    if category not in CATEGORIES:
        raise InvalidInput("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    old = policies(conn, tenant_id=tenant_id)[category]
    new = {
        "keep_days": old["keep_days"] if keep_days is None else keep_days,
        "action": old["action"] if action is None else action,
        "enabled": old["enabled"] if enabled is None else bool(enabled),
        "patterns": old["patterns"] if patterns is None else parse_patterns(patterns),
    }
    check_policy(category, new["keep_days"], new["action"], new["patterns"])
    t = s.retention_policies
    where = sa.and_(t.c.tenant_id == tenant_id, t.c.category == category)
    values = {**new, "updated_by": actor, "updated_at": utcnow()}
    if old["source"] == "tenant":
        conn.execute(sa.update(t).where(where).values(**values))
    else:
        conn.execute(t.insert().values(tenant_id=tenant_id, category=category, **values))
    keys = ("keep_days", "action", "enabled", "patterns")
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=POLICY_ACTION,
        object_type="retention_policy",
        object_id=category,
        detail={"old": {k: old[k] for k in keys}, "new": new},
    )
    return policies(conn, tenant_id=tenant_id)[category]


# --- the run ---------------------------------------------------------------------------------------
def _held_subjects(conn: sa.Connection, tenant_id: str) -> list[Subject]:
    from medscrm.privacy.service import subject

    r = s.person_restrictions
    pids = conn.execute(
        sa.select(r.c.person_id).where(r.c.tenant_id == tenant_id, r.c.kind == LEGAL_HOLD)
    ).scalars()
    return [subject(conn, tenant_id=tenant_id, person_id=p) for p in sorted(pids)]


def _held(cat: Category, subs: list[Subject]) -> sa.ColumnElement[bool]:
    """The rows of held persons: true or false, never NULL (``x IN (…)`` of a NULL column is NULL,
    and ``NOT NULL`` would leave an unheld row out of the run)."""
    if not subs:
        return sa.false()
    where = PERSON_TABLES[cat.person_table].where
    return sa.func.coalesce(sa.or_(*[where(sub) for sub in subs]), sa.false())


def _expired(
    cat: Category, pol: dict[str, Any], tenant_id: str, cutoff: dt.datetime
) -> sa.ColumnElement[bool]:
    t = cat.table
    cond = [t.c.tenant_id == tenant_id, t.c[cat.ts] < cutoff, cat.scope(pol)]
    if pol["action"] == "anonymise":
        cond.append(cat.pending())
    return sa.and_(*cond)


def _report(
    conn: sa.Connection, cat: Category, pol: dict[str, Any], tenant_id: str, cutoff: dt.datetime, held
) -> dict[str, Any]:
    t = cat.table
    ts = t.c[cat.ts]
    base = _expired(cat, pol, tenant_id, cutoff)
    n, oldest, newest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(ts), sa.func.max(ts)).where(base, sa.not_(held))
    ).one()
    n_held = conn.execute(sa.select(sa.func.count()).select_from(t).where(base, held)).scalar()
    return {
        "action": pol["action"],
        "keep_days": pol["keep_days"],
        "cutoff": cutoff.isoformat(),
        "rows": int(n or 0),
        "held": int(n_held or 0),
        "oldest": as_utc(oldest).isoformat() if oldest else None,
        "newest": as_utc(newest).isoformat() if newest else None,
        "done": 0,
    }


def _allow(conn: sa.Connection) -> None:
    """Let this transaction's deletes/updates through PostgreSQL's append-only trigger."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL medscrm.retention = 'on'")


def _apply_batch(
    conn: sa.Connection,
    cat: Category,
    pol: dict[str, Any],
    tenant_id: str,
    cutoff: dt.datetime,
    held,
    batch: int,
) -> int:
    t = cat.table
    ids = list(
        conn.execute(
            sa.select(t.c.id).where(_expired(cat, pol, tenant_id, cutoff), sa.not_(held)).limit(batch)
        ).scalars()
    )
    if not ids:
        return 0
    _allow(conn)
    if pol["action"] == "delete":
        if cat.cascade is not None:
            cat.cascade(conn, tenant_id, ids)
        conn.execute(sa.delete(t).where(t.c.tenant_id == tenant_id, t.c.id.in_(ids)))
    else:
        conn.execute(sa.update(t).where(t.c.tenant_id == tenant_id, t.c.id.in_(ids)).values(**cat.anonymise))
    return len(ids)


def run(
    engine: sa.Engine,
    *,
    tenant_id: str,
    actor: str,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    batch: int = BATCH,
    categories: list[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """One retention run of the tenant (see the module). ``progress(category, done, total)`` is
    called after each batch. Returns the run row (``result``: per category ``rows``, ``held``,
    ``oldest``, ``newest``, ``done``, or ``refused`` with the reason)."""
    now = now or utcnow()
    if batch < 1:
        raise InvalidInput("batch", "at least 1 row per batch")
    for c in categories or []:
        if c not in CATEGORIES:
            raise InvalidInput("category", f"{c!r} is not one of {', '.join(CATEGORIES)}")
    run_id = new_id("ret")
    with engine.begin() as conn:
        if conn.execute(sa.select(s.tenants.c.id).where(s.tenants.c.id == tenant_id)).first() is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        pols = policies(conn, tenant_id=tenant_id)
        conn.execute(
            s.retention_runs.insert().values(
                id=run_id,
                tenant_id=tenant_id,
                dry_run=dry_run,
                status="running",
                actor=actor,
                started_at=now,  # the run's clock (the schedule compares it with its slot)
            )
        )
    result: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            subs = _held_subjects(conn, tenant_id)
            for key, cat in CATEGORIES.items():
                pol = pols[key]
                if categories and key not in categories:
                    continue
                if not pol["enabled"]:
                    result[key] = {
                        "action": pol["action"],
                        "keep_days": pol["keep_days"],
                        "skipped": "disabled",
                    }
                    continue
                try:  # a floor raised after the policy was saved: refused, reported
                    check_policy(key, pol["keep_days"], pol["action"], pol["patterns"])
                except InvalidInput as exc:
                    result[key] = {
                        "action": pol["action"],
                        "keep_days": pol["keep_days"],
                        "refused": exc.reason,
                    }
                    continue
                cutoff = now - dt.timedelta(days=pol["keep_days"])
                result[key] = _report(conn, cat, pol, tenant_id, cutoff, _held(cat, subs))
            conn.rollback()
        if not dry_run:
            for key, rep in result.items():
                if "rows" not in rep or not rep["rows"]:
                    continue
                cat, pol = CATEGORIES[key], pols[key]
                cutoff = now - dt.timedelta(days=pol["keep_days"])
                total = rep["rows"]
                if progress:
                    progress(key, 0, total)
                # as many batches as the report counted (+1 for rows that expired meanwhile): a row an
                # anonymisation somehow leaves pending cannot keep the run going; the next run sees it
                for _ in range(total // batch + 2):
                    with engine.begin() as conn:
                        subs = _held_subjects(conn, tenant_id)  # a hold placed meanwhile counts
                        n = _apply_batch(conn, cat, pol, tenant_id, cutoff, _held(cat, subs), batch)
                    rep["done"] += n
                    if progress:
                        progress(key, rep["done"], total)
                    if n < batch:
                        break
    except Exception as exc:
        with engine.begin() as conn:
            _finish(conn, run_id, tenant_id, actor, dry_run, "failed", result, f"{type(exc).__name__}: {exc}")
        raise
    with engine.begin() as conn:
        return _finish(conn, run_id, tenant_id, actor, dry_run, "done", result, None)


def _finish(
    conn: sa.Connection,
    run_id: str,
    tenant_id: str,
    actor: str,
    dry_run: bool,
    status: str,
    result: dict[str, Any],
    error: str | None,
) -> dict[str, Any]:
    conn.execute(
        sa.update(s.retention_runs)
        .where(s.retention_runs.c.id == run_id)
        .values(status=status, finished_at=utcnow(), result=result, error=error)
    )
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action=RUN_ACTION,
        object_type="retention_run",
        object_id=run_id,
        detail={
            "dry_run": dry_run,
            "status": status,
            **({"error": error} if error else {}),
            "counts": {
                k: {"rows": v.get("rows", 0), "done": v.get("done", 0), "held": v.get("held", 0)}
                for k, v in result.items()
            },
        },
    )
    return get_run(conn, tenant_id=tenant_id, run_id=run_id)


def get_run(conn: sa.Connection, *, tenant_id: str, run_id: str) -> dict[str, Any]:
    r = (
        conn.execute(
            sa.select(s.retention_runs).where(
                s.retention_runs.c.tenant_id == tenant_id, s.retention_runs.c.id == run_id
            )
        )
        .mappings()
        .first()
    )
    if r is None:
        raise NotFound(f"retention run {run_id!r} not found")
    return dict(r)


def list_runs(conn: sa.Connection, *, tenant_id: str, limit: int = 20) -> list[dict[str, Any]]:
    t = s.retention_runs
    return [
        dict(r)
        for r in conn.execute(
            sa.select(t)
            .where(t.c.tenant_id == tenant_id)
            .order_by(t.c.started_at.desc(), t.c.id)
            .limit(limit)
        ).mappings()
    ]


# --- the daily schedule ----------------------------------------------------------------------------
def parse_at(text: str | None) -> dt.time | None:
    """``HH:MM`` (China time) → a time; ``off``/empty → None (no scheduled run)."""
    return parse_daily_time(text, ENV_AT, "03:00")


def configured_at() -> dt.time | None:
    return parse_at(get_settings().retention_at)


def due_tenants(
    conn: sa.Connection, *, now: dt.datetime, at: dt.time, tenant_id: str | None = None
) -> list[str]:
    """Tenants whose last real run (scheduled or by hand) is older than the latest scheduled time."""
    slot = last_slot(now, at)
    r = s.retention_runs
    q = sa.select(r.c.tenant_id, sa.func.max(r.c.started_at)).where(
        r.c.dry_run == sa.false(), r.c.status == "done"
    )
    last = {tid: as_utc(at_) for tid, at_ in conn.execute(q.group_by(r.c.tenant_id)).all()}
    tq = sa.select(s.tenants.c.id).order_by(s.tenants.c.id)
    if tenant_id is not None:
        tq = tq.where(s.tenants.c.id == tenant_id)
    return [t for t in conn.execute(tq).scalars() if last.get(t) is None or last[t] < slot]


def run_due(
    engine: sa.Engine,
    *,
    now: dt.datetime | None = None,
    at: dt.time | None = None,
    tenant_id: str | None = None,
) -> list[dict[str, Any]]:
    """The scheduled run of every due tenant (actor ``scheduler``); a failing tenant is logged and
    retried at the next call. Returns ``[{tenant_id, run_id, done} | {tenant_id, error}]``."""
    if at is None:
        return []
    now = now or utcnow()
    with engine.connect() as conn:
        todo = due_tenants(conn, now=now, at=at, tenant_id=tenant_id)
    out = []
    for tid in todo:
        try:
            res = run(engine, tenant_id=tid, actor="scheduler", now=now)
            done = {k: v.get("done", 0) for k, v in (res["result"] or {}).items()}
            out.append({"tenant_id": tid, "run_id": res["id"], "done": done})
            log.info("scheduled retention run of tenant %s: %s", tid, done)
        except Exception as exc:  # one tenant must not stop the others
            log.warning("scheduled retention run of tenant %s failed: %s", tid, exc)
            out.append({"tenant_id": tid, "error": f"{type(exc).__name__}: {exc}"})
    return out
