"""Delivering the webhook outbox.

Life of a delivery::

    pending ──claim (FOR UPDATE SKIP LOCKED on PostgreSQL; a lease)──► delivering
       ▲                                                                   │ POST, signed
       │ replay (any state but delivering; fresh attempt budget)           ├── 2xx ──► delivered
       │                                                                   ├── else, attempts left ──► pending
       └───────────────────────────────────────────── dead ◄───────────────┴── else, last attempt
                                                                    (next_attempt_at = now + backoff)

Each attempt is logged in ``webhook_attempts`` (attempt number, status code or error, latency). A
dispatcher that dies mid-attempt leaves the row ``delivering``; when its lease runs out another
dispatcher takes it again (at-least-once: receivers de-duplicate by the event id header).

Signature (Stripe's scheme): ``X-Medscrm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" with the subscription's secret>``. Headers ``X-Medscrm-Event-Id`` (stable across
retries and replays: the idempotency key), ``X-Medscrm-Event-Type``, ``X-Medscrm-Delivery-Id``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from medscrm import __version__
from medscrm.accounts.secrets import unseal
from medscrm.common import InvalidInput, MedscrmError, PollingThread, backoff, new_id, utcnow
from medscrm.config import get_settings
from medscrm.db.claim import claim_ids, due_or_expired
from medscrm.db.schema import webhook_attempts, webhook_deliveries, webhook_subscriptions
from medscrm.webhooks.service import check_url

log = logging.getLogger("medscrm.webhooks")

SIGNATURE_HEADER = "X-Medscrm-Signature"
EVENT_ID_HEADER = "X-Medscrm-Event-Id"
#: how long a claimed delivery stays with its dispatcher (beyond the HTTP timeout)
LEASE_SECONDS = 60


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Medscrm-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: float = 300
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` seconds old
    (the receiver's check; docs/webhooks.md has it stand-alone)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, t, body).split("v1=", 1)[1]
    return any(
        hmac.compare_digest(expected, v) for k, v in (p.split("=", 1) for p in header.split(",")) if k == "v1"
    )


def _claim(
    engine: sa.Engine,
    *,
    worker_id: str,
    limit: int,
    now: dt.datetime,
    delivery_id: str | None = None,
    tenant_id: str | None = None,
) -> list[str]:
    d, w = webhook_deliveries, webhook_subscriptions
    due = due_or_expired(
        status=d.c.status,
        waiting="pending",
        due=d.c.next_attempt_at <= now,
        working="delivering",
        lease_until=d.c.lease_until,
        now=now,
    )
    active = sa.select(w.c.id).where(w.c.id == d.c.subscription_id, w.c.active.is_(True)).exists()
    q = sa.select(d.c.id).where(due, active)
    if tenant_id is not None:
        q = q.where(d.c.tenant_id == tenant_id)
    if delivery_id is not None:
        q = sa.select(d.c.id).where(d.c.id == delivery_id, d.c.status == "pending")
    q = q.order_by(d.c.next_attempt_at, d.c.id).limit(limit)
    return claim_ids(
        engine,
        d,
        q,
        values={
            "status": "delivering",
            "worker_id": worker_id,
            "lease_until": now + dt.timedelta(seconds=LEASE_SECONDS + _timeout()),
            "updated_at": now,
        },
    )


def _timeout() -> float:
    return float(get_settings().webhooks_timeout_seconds)


def dispatch_once(
    engine: sa.Engine,
    *,
    worker_id: str = "dispatch",
    limit: int = 50,
    now: dt.datetime | None = None,
    max_attempts: int | None = None,
    client: httpx.Client | None = None,
    delivery_id: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, int]:
    """Attempt up to ``limit`` due deliveries (or just ``delivery_id``, if pending). ``now`` fixes the
    clock (tests); ``tenant_id``: that tenant's deliveries only; ``max_attempts`` overrides ``MEDSCRM_WEBHOOKS_MAX_ATTEMPTS``. Returns counts by
    outcome: ``delivered``, ``retry``, ``dead``."""
    ids = _claim(
        engine,
        worker_id=worker_id,
        limit=limit,
        now=now or utcnow(),
        delivery_id=delivery_id,
        tenant_id=tenant_id,
    )
    out = {"delivered": 0, "retry": 0, "dead": 0}
    if not ids:
        return out
    own = client is None
    client = client or httpx.Client(timeout=_timeout(), follow_redirects=False)
    try:
        for did in ids:
            out[_deliver(engine, client, did, worker_id=worker_id, now=now, max_attempts=max_attempts)] += 1
    finally:
        if own:
            client.close()
    return out


def _fence(delivery_id: str, worker_id: str):
    d = webhook_deliveries
    return (d.c.id == delivery_id, d.c.worker_id == worker_id, d.c.status == "delivering")


def _deliver(
    engine: sa.Engine,
    client: httpx.Client,
    delivery_id: str,
    *,
    worker_id: str,
    now: dt.datetime | None,
    max_attempts: int | None,
) -> str:
    d, w = webhook_deliveries, webhook_subscriptions
    with engine.connect() as conn:
        row = conn.execute(sa.select(d).where(*_fence(delivery_id, worker_id))).mappings().first()
        if row is None:
            return "retry"  # taken over by another dispatcher meanwhile
        sub = conn.execute(sa.select(w.c.url, w.c.secret).where(w.c.id == row["subscription_id"])).first()
    attempt = (row["attempts"] or 0) + 1
    status_code: int | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        if sub is None:
            raise MedscrmError("the subscription no longer exists")
        check_url(sub.url)  # again at delivery: a host may have been re-pointed at a private address
        secret = unseal(sub.secret)["secret"]
        body = orjson.dumps(row["payload"])
        ts = int((now or utcnow()).timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"medscrm-webhooks/{__version__}",
            SIGNATURE_HEADER: sign(secret, ts, body),
            EVENT_ID_HEADER: row["event_id"],
            "X-Medscrm-Event-Type": row["event_type"],
            "X-Medscrm-Delivery-Id": row["id"],
        }
        resp = client.post(sub.url, content=body, headers=headers)
        status_code = resp.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {resp.text[:300]}"
    except InvalidInput as exc:
        error = str(exc)
    except (httpx.HTTPError, MedscrmError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000] or type(exc).__name__
    latency_ms = int((time.perf_counter() - started) * 1000)
    s = get_settings()
    limit = max_attempts or s.webhooks_max_attempts
    done = now or utcnow()
    values: dict[str, Any] = {
        "attempts": attempt,
        "last_status_code": status_code,
        "last_error": error,
        "lease_until": None,
        "updated_at": done,
    }
    if error is None:
        outcome = "delivered"
        values.update(status="delivered", delivered_at=done)
    elif attempt >= limit:
        outcome = "dead"
        values.update(status="dead")
    else:
        outcome = "retry"
        wait = backoff(attempt, s.webhooks_backoff_seconds, s.webhooks_backoff_max_seconds)
        values.update(status="pending", next_attempt_at=done + dt.timedelta(seconds=wait))
    with engine.begin() as conn:
        res = conn.execute(
            d.update()
            .where(*_fence(delivery_id, worker_id))
            .values(**values)
            .execution_options(preserve_rowcount=True)
        )
        if res.rowcount == 1:
            conn.execute(
                webhook_attempts.insert().values(
                    id=new_id("wha"),
                    tenant_id=row["tenant_id"],
                    delivery_id=delivery_id,
                    attempt=attempt,
                    attempted_at=done,
                    status_code=status_code,
                    latency_ms=latency_ms,
                    error=error,
                )
            )
    if error:
        log.info("webhook %s attempt %d: %s (%s)", delivery_id, attempt, error, outcome)
    return outcome


def deliver_now(engine: sa.Engine, delivery_id: str, **kw: Any) -> dict[str, int]:
    """Attempt one pending delivery at once (``POST …/ping``)."""
    return dispatch_once(engine, delivery_id=delivery_id, limit=1, **kw)


class WebhookDispatcher(PollingThread):
    """A daemon thread that delivers due webhooks every ``interval`` seconds (errors are logged and
    retried; the state is in the database). Started by ``medscrm serve`` on DuckDB and by
    ``medscrm worker``."""

    thread_name = "medscrm-webhooks"

    def __init__(self, engine: sa.Engine, *, worker_id: str = "serve", interval: float = 1.0):
        super().__init__(interval=interval)
        self.engine = engine
        self.worker_id = worker_id
        self.rounds = 0

    def step(self) -> bool:
        r = dispatch_once(self.engine, worker_id=self.worker_id)
        self.rounds += 1
        return sum(r.values()) > 0

    def failed(self, exc: Exception) -> None:  # the database is busy or down: retry on the next round
        super().failed(exc)
        log.warning("webhook dispatch failed: %s", self.last_error)


def start_background(engine: sa.Engine) -> WebhookDispatcher | None:
    """The in-process dispatcher of ``medscrm serve`` on the embedded database (DuckDB: one process);
    None on PostgreSQL, where ``medscrm worker`` processes deliver, or when
    ``MEDSCRM_WEBHOOKS_DISPATCHER=0``."""
    if engine.dialect.name != "duckdb" or not get_settings().webhooks_dispatcher:
        return None
    return WebhookDispatcher(engine).start()
