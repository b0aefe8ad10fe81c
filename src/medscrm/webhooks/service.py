"""Webhook subscriptions (per tenant), their deliveries and attempts, replay and ping.

A subscription's URL must be ``http``/``https`` with a host; addresses that are private, loopback,
link-local, multicast or reserved are refused (the server must not be made to call into its own
network) unless ``MEDSCRM_WEBHOOKS_ALLOW_PRIVATE=1``. Each subscription has its own signing secret
(``whsec_…``), generated at creation and shown once; it is stored sealed
(:func:`medscrm.accounts.secrets.seal`) and can be rotated.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets as _secrets
import socket
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.accounts.secrets import seal, unseal
from medscrm.common import InvalidInput, NotFound, new_id, utcnow
from medscrm.config import get_settings
from medscrm.db.schema import webhook_attempts, webhook_deliveries, webhook_subscriptions
from medscrm.webhooks import outbox
from medscrm.webhooks.outbox import EVENT_TYPES, PING

STATUSES = ("pending", "delivering", "delivered", "dead")


def new_signing_secret() -> str:
    return "whsec_" + _secrets.token_urlsafe(32)


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, resolve: bool = True) -> str:
    """The URL if a subscription may use it; else :class:`InvalidInput` on ``url`` with the reason."""
    url = (url or "").strip()
    if not url or len(url) > 2000:
        raise InvalidInput("url", "give the endpoint's URL (1–2000 characters)")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidInput("url", f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url", f"scheme {parts.scheme or '(none)'!r}: use http or https")
    if not host:
        raise InvalidInput("url", "the URL has no host")
    if parts.username or parts.password:
        raise InvalidInput("url", "credentials in the URL are not allowed; the signature authenticates us")
    if get_settings().webhooks_allow_private:
        return url
    for ip in _addresses(host, resolve=resolve):
        if _blocked_ip(ip):
            raise InvalidInput(
                "url",
                f"{host} is a private, loopback or reserved address ({ip}); webhooks go to public "
                "endpoints only (MEDSCRM_WEBHOOKS_ALLOW_PRIVATE=1 allows them)",
            )
    return url


def _addresses(host: str, *, resolve: bool) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidInput("url", f"host {host!r} does not resolve: {exc}") from None
    return [ipaddress.ip_address(i[4][0].split("%", 1)[0]) for i in infos]


def check_events(events: list[str] | None) -> list[str]:
    events = sorted(set(events or ["*"]))
    groups = {t.split(".", 1)[0] + ".*" for t in EVENT_TYPES}
    for e in events:
        if e != "*" and e not in EVENT_TYPES and e not in groups:
            raise InvalidInput(
                "events", f"unknown event type {e!r}; use * or one of: {', '.join(EVENT_TYPES)} (or group.*)"
            )
    return events


def _public(row: Any) -> dict[str, Any]:
    r = dict(row._mapping if hasattr(row, "_mapping") else row)
    r.pop("secret", None)
    r.pop("tenant_id", None)
    return r


def create(
    conn: sa.Connection,
    *,
    tenant_id: str,
    url: str,
    events: list[str] | None = None,
    description: str | None = None,
    active: bool = True,
    actor: str,
) -> dict[str, Any]:
    """Create a subscription; the answer carries ``secret`` (shown this once, stored sealed)."""
    url = check_url(url)
    events = check_events(events)
    if description is not None and len(description) > 200:
        raise InvalidInput("description", "at most 200 characters")
    secret = new_signing_secret()
    now = utcnow()
    row = {
        "id": new_id("whs"),
        "tenant_id": tenant_id,
        "url": url,
        "events": events,
        "description": description,
        "secret": seal({"secret": secret}),
        "active": active,
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    conn.execute(webhook_subscriptions.insert().values(**row))
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.create",
        object_type="webhook",
        object_id=row["id"],
        detail={"url": url, "events": events},
    )
    outbox.invalidate(tenant_id)
    return {**_public(row), "secret": secret}


def get(conn: sa.Connection, *, tenant_id: str, subscription_id: str) -> dict[str, Any]:
    w = webhook_subscriptions
    row = conn.execute(sa.select(w).where(w.c.tenant_id == tenant_id, w.c.id == subscription_id)).first()
    if not row:
        raise NotFound(f"subscription_id: webhook subscription {subscription_id!r} not found")
    return _public(row)


def signing_secret(conn: sa.Connection, *, tenant_id: str, subscription_id: str) -> str:
    w = webhook_subscriptions
    blob = conn.execute(
        sa.select(w.c.secret).where(w.c.tenant_id == tenant_id, w.c.id == subscription_id)
    ).scalar()
    if blob is None:
        raise NotFound(f"subscription_id: webhook subscription {subscription_id!r} not found")
    return unseal(blob)["secret"]


def list_subscriptions(conn: sa.Connection, *, tenant_id: str) -> list[dict[str, Any]]:
    w = webhook_subscriptions
    rows = conn.execute(sa.select(w).where(w.c.tenant_id == tenant_id).order_by(w.c.created_at, w.c.id)).all()
    return [_public(r) for r in rows]


def update(
    conn: sa.Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    actor: str,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    rotate_secret: bool = False,
) -> dict[str, Any]:
    """Change what is given; ``rotate_secret``: a new secret, returned as ``secret`` (shown once)."""
    get(conn, tenant_id=tenant_id, subscription_id=subscription_id)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if url is not None:
        values["url"] = check_url(url)
    if events is not None:
        values["events"] = check_events(events)
    if description is not None:
        if len(description) > 200:
            raise InvalidInput("description", "at most 200 characters")
        values["description"] = description
    if active is not None:
        values["active"] = bool(active)
    secret = None
    if rotate_secret:
        secret = new_signing_secret()
        values["secret"] = seal({"secret": secret})
    w = webhook_subscriptions
    conn.execute(w.update().where(w.c.tenant_id == tenant_id, w.c.id == subscription_id).values(**values))
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.update",
        object_type="webhook",
        object_id=subscription_id,
        detail={k: v for k, v in values.items() if k not in ("secret", "updated_at")}
        | ({"secret": "rotated"} if rotate_secret else {}),
    )
    outbox.invalidate(tenant_id)
    out = get(conn, tenant_id=tenant_id, subscription_id=subscription_id)
    return {**out, "secret": secret} if secret else out


def delete(conn: sa.Connection, *, tenant_id: str, subscription_id: str, actor: str) -> None:
    """Remove the subscription with its deliveries and their attempts."""
    get(conn, tenant_id=tenant_id, subscription_id=subscription_id)
    d, a = webhook_deliveries, webhook_attempts
    ids = sa.select(d.c.id).where(d.c.tenant_id == tenant_id, d.c.subscription_id == subscription_id)
    conn.execute(a.delete().where(a.c.tenant_id == tenant_id, a.c.delivery_id.in_(ids)))
    conn.execute(d.delete().where(d.c.tenant_id == tenant_id, d.c.subscription_id == subscription_id))
    w = webhook_subscriptions
    conn.execute(w.delete().where(w.c.tenant_id == tenant_id, w.c.id == subscription_id))
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.delete",
        object_type="webhook",
        object_id=subscription_id,
    )
    outbox.invalidate(tenant_id)


def list_deliveries(
    conn: sa.Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    attempts: bool = True,
) -> list[dict[str, Any]]:
    """Newest first; each with its ``attempts_log`` (attempt, at, status code, latency, error)."""
    get(conn, tenant_id=tenant_id, subscription_id=subscription_id)
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"{status!r} is not one of {', '.join(STATUSES)}")
    d = webhook_deliveries
    q = sa.select(d).where(d.c.tenant_id == tenant_id, d.c.subscription_id == subscription_id)
    if status:
        q = q.where(d.c.status == status)
    rows = [
        dict(r)
        for r in conn.execute(
            q.order_by(d.c.created_at.desc(), d.c.id.desc()).limit(limit).offset(offset)
        ).mappings()
    ]
    if attempts and rows:
        a = webhook_attempts
        log: dict[str, list[dict]] = {}
        for r in conn.execute(
            sa.select(
                a.c.delivery_id, a.c.attempt, a.c.attempted_at, a.c.status_code, a.c.latency_ms, a.c.error
            )
            .where(a.c.tenant_id == tenant_id, a.c.delivery_id.in_([r["id"] for r in rows]))
            .order_by(a.c.attempted_at, a.c.attempt)
        ).mappings():
            log.setdefault(r["delivery_id"], []).append({k: v for k, v in r.items() if k != "delivery_id"})
        for r in rows:
            r["attempts_log"] = log.get(r["id"], [])
    for r in rows:
        r.pop("tenant_id", None)
        r.pop("worker_id", None)
        r.pop("lease_until", None)
    return rows


def replay(
    conn: sa.Connection,
    *,
    tenant_id: str,
    subscription_id: str,
    delivery_id: str | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> int:
    """Queue a delivery again (``delivery_id``: that one, in any state but ``delivering``; else every
    ``dead`` delivery of the subscription) with a fresh attempt budget. The event keeps its id: a
    receiver that already processed it can tell. Returns how many were queued."""
    get(conn, tenant_id=tenant_id, subscription_id=subscription_id)
    d = webhook_deliveries
    where = [d.c.tenant_id == tenant_id, d.c.subscription_id == subscription_id]
    if delivery_id is not None:
        row = conn.execute(sa.select(d.c.status).where(*where, d.c.id == delivery_id)).first()
        if not row:
            raise NotFound(f"delivery_id: delivery {delivery_id!r} not found for this subscription")
        if row.status == "delivering":
            raise InvalidInput(
                "delivery_id", "the delivery is being attempted right now; replay it afterwards"
            )
        where.append(d.c.id == delivery_id)
    else:
        where.append(d.c.status == "dead")
    now = now or utcnow()
    res = conn.execute(
        d.update()
        .where(*where)
        .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None, updated_at=now)
        .execution_options(preserve_rowcount=True)
    )
    n = max(res.rowcount or 0, 0)
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.replay",
        object_type="webhook",
        object_id=subscription_id,
        detail={"delivery_id": delivery_id, "queued": n},
    )
    return n


def queue_ping(conn: sa.Connection, *, tenant_id: str, subscription_id: str) -> str:
    """Queue a ``ping`` event for this subscription only; returns the delivery id."""
    get(conn, tenant_id=tenant_id, subscription_id=subscription_id)
    ids = outbox.publish(
        conn,
        tenant_id,
        [(PING, {"subscription_id": subscription_id, "message": "medscrm webhook test"})],
        subscription_ids=[subscription_id],
        return_ids=True,
    )
    return ids[0]
