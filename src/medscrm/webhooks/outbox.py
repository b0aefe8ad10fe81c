"""Domain events → webhook outbox rows, in the caller's transaction.

Subscribes to the topics of :mod:`medscrm.hooks`. For each event it finds the tenant's active
subscriptions that want the event's type (cached per tenant for :data:`CACHE_SECONDS`, so a tenant
without subscriptions costs one dictionary lookup per event) and inserts one ``webhook_deliveries``
row per subscription, with the event body that will be POSTed.

One event per POST (Stripe's style): a receiver handles one body shape and acknowledges each event on
its own. Bulk changes are not one event per person, though: a segment refresh that moves thousands
of persons becomes ``segment.entered`` / ``segment.exited`` events that each carry up to
:data:`CHUNK` person ids, and an identity run that merges many persons becomes ``person.merged``
events of up to :data:`CHUNK` pairs. The outbox stays proportional to the number of changes / CHUNK.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import sqlalchemy as sa

from medscrm import hooks
from medscrm.common import as_utc, new_id, utcnow
from medscrm.db.schema import segments, webhook_deliveries, webhook_subscriptions

#: every event type a subscription can ask for (``*`` = all of them)
EVENT_TYPES = (
    "person.merged",
    "person.split",
    "person.erased",
    "person.restricted",
    "segment.entered",
    "segment.exited",
    "consent.changed",
    "send.blocked",
    "send.sent",
    "send.delivered",
    "send.failed",
)
#: the test event of ``POST /api/v1/webhooks/{id}/ping``; goes to the pinged subscription only
PING = "ping"
#: persons (or merge pairs) per event of a bulk change
CHUNK = 500
#: how long a tenant's subscription list is reused before it is read again (other processes'
#: changes show within this time; this process's own changes invalidate it at once)
CACHE_SECONDS = 5.0

_cache: dict[str, tuple[float, list[tuple[str, frozenset[str]]]]] = {}
_lock = threading.Lock()


def invalidate(tenant_id: str | None = None) -> None:
    """Forget the cached subscriptions of ``tenant_id`` (all tenants: None)."""
    with _lock:
        if tenant_id is None:
            _cache.clear()
        else:
            _cache.pop(tenant_id, None)


def _subscriptions(conn: sa.Connection, tenant_id: str) -> list[tuple[str, frozenset[str]]]:
    now = time.monotonic()
    with _lock:
        hit = _cache.get(tenant_id)
    if hit and hit[0] > now:
        return hit[1]
    w = webhook_subscriptions
    subs = [
        (r.id, frozenset(r.events or ()))
        for r in conn.execute(
            sa.select(w.c.id, w.c.events).where(w.c.tenant_id == tenant_id, w.c.active.is_(True))
        ).all()
    ]
    with _lock:
        _cache[tenant_id] = (now + CACHE_SECONDS, subs)
    return subs


def wants(events: frozenset[str], event_type: str) -> bool:
    """``events`` (a subscription's filter) covers ``event_type``: ``*``, the type, or ``group.*``."""
    return "*" in events or event_type in events or f"{event_type.split('.', 1)[0]}.*" in events


def _iso(t: dt.datetime) -> str:
    return as_utc(t).isoformat().replace("+00:00", "Z")


def event_body(event_id: str, event_type: str, tenant_id: str, data: dict[str, Any], at: dt.datetime) -> dict:
    """The JSON object POSTed for one event (documented in docs/webhooks.md)."""
    return {"id": event_id, "type": event_type, "created_at": _iso(at), "tenant_id": tenant_id, "data": data}


def publish(
    conn: sa.Connection,
    tenant_id: str,
    events: list[tuple[str, dict[str, Any]]],
    at: dt.datetime | None = None,
    *,
    subscription_ids: list[str] | None = None,
    return_ids: bool = False,
) -> Any:
    """Queue ``events`` (``(type, data)``) for every subscription of the tenant that wants them (or
    for ``subscription_ids`` only); returns the rows written. Nothing is read or written when the
    tenant has no subscription. ``return_ids``: the delivery ids instead."""
    subs = (
        [(s, frozenset({"*"})) for s in subscription_ids]
        if subscription_ids is not None
        else _subscriptions(conn, tenant_id)
    )
    if not subs or not events:
        return [] if return_ids else 0
    now = utcnow()
    at = at or now
    rows = []
    for event_type, data in events:
        targets = [sid for sid, filt in subs if wants(filt, event_type)]
        if not targets:
            continue
        eid = new_id("evt")
        body = event_body(eid, event_type, tenant_id, data, at)
        for sid in targets:
            rows.append(
                {
                    "id": new_id("whd"),
                    "tenant_id": tenant_id,
                    "subscription_id": sid,
                    "event_id": eid,
                    "event_type": event_type,
                    "payload": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if rows:
        conn.execute(sa.insert(webhook_deliveries), rows)
    return [r["id"] for r in rows] if return_ids else len(rows)


def _chunks(items: list) -> list[list]:
    n = CHUNK
    return [items[i : i + n] for i in range(0, len(items), n)]


def _wanted(conn: sa.Connection, tenant_id: str, *types: str) -> bool:
    subs = _subscriptions(conn, tenant_id)
    return any(wants(f, t) for _, f in subs for t in types)


# --- hook handlers ---------------------------------------------------------------------------------
@hooks.subscribe(hooks.PERSONS_MERGED, "webhooks")
def _on_persons_merged(
    conn: sa.Connection,
    *,
    tenant_id: str,
    merged: dict[str, str],
    split: dict[str, list[str]],
    now: dt.datetime | None = None,
    actor: str = "identity",
    **_: Any,
) -> dict[str, int]:
    """The persons layer sums its subscribers' counts into its report: ``{"webhooks": rows}``, or
    nothing when no row was written."""
    if not _wanted(conn, tenant_id, "person.merged", "person.split"):
        return {}
    pairs = [{"person_id": o, "into": s} for o, s in sorted((merged or {}).items()) if s and s != o]
    splits = [{"person_id": o, "into": sorted(t)} for o, t in sorted((split or {}).items()) if set(t) - {o}]
    events = [("person.merged", {"merges": c, "actor": actor}) for c in _chunks(pairs)]
    events += [("person.split", {"splits": c, "actor": actor}) for c in _chunks(splits)]
    n = publish(conn, tenant_id, events, now)
    return {"webhooks": n} if n else {}


@hooks.subscribe(hooks.SEGMENT_CHANGED, "webhooks")
def _on_segment_changed(
    conn: sa.Connection,
    *,
    tenant_id: str,
    segment_id: str,
    entered: list[str],
    exited: list[str],
    now: dt.datetime | None = None,
    **_: Any,
) -> int:
    if not (entered or exited) or not _wanted(conn, tenant_id, "segment.entered", "segment.exited"):
        return 0
    key = conn.execute(sa.select(segments.c.key).where(segments.c.id == segment_id)).scalar()
    seg = {"segment_id": segment_id, "segment_key": key}
    events = [("segment.entered", {**seg, "person_ids": c}) for c in _chunks(sorted(entered))]
    events += [("segment.exited", {**seg, "person_ids": c}) for c in _chunks(sorted(exited))]
    return publish(conn, tenant_id, events, now)


@hooks.subscribe(hooks.CONSENT_CHANGED, "webhooks")
def _on_consent_changed(conn: sa.Connection, *, tenant_id: str, changes: list[dict], **_: Any) -> int:
    if not changes or not _wanted(conn, tenant_id, "consent.changed"):
        return 0
    events = [
        ("consent.changed", {k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in c.items()})
        for c in changes
    ]
    return publish(conn, tenant_id, events)


@hooks.subscribe(hooks.SEND_STATUS, "webhooks")
def _on_send_status(
    conn: sa.Connection, *, tenant_id: str, send: dict[str, Any], at: dt.datetime | None = None, **_: Any
) -> int:
    event_type = f"send.{send.get('status')}"
    if event_type not in EVENT_TYPES or not _wanted(conn, tenant_id, event_type):
        return 0
    return publish(conn, tenant_id, [(event_type, send)], at)
