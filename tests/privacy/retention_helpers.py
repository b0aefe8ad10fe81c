"""Rows of every retention category at a given age, for one person or none."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm.common import new_id, utcnow
from medscrm.db import schema as s


def seed(
    conn: sa.Connection,
    tenant_id: str,
    *,
    age_days: float,
    person_id: str | None = None,
    phone: str = "+8613900000000",
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """One row per category (``events``: a page view, ``health``: a glucose reading) dated
    ``age_days`` ago, carrying ``person_id``/``phone`` where real rows would. Returns category → id
    (plus ``attempt`` and ``link``, the rows that go with a delivery and a send)."""
    t = (now or utcnow()) - dt.timedelta(days=age_days)
    pid = person_id or new_id("per")
    src = new_id("src")
    ids = {
        k: new_id(k[:3])
        for k in (
            "events",
            "health",
            "source_records",
            "quarantine",
            "webhook_deliveries",
            "sends",
            "audit",
            "attempt",
        )
    }
    ids["link"] = new_id("tok")
    for key, name, props in (
        ("events", "page_view", {"url": "/x", "phone": phone}),
        ("health", "glucose_reading", {"mmol": 7.1, "phone": phone}),
    ):
        conn.execute(
            s.events.insert().values(
                id=ids[key],
                tenant_id=tenant_id,
                source_id=src,
                message_id=new_id("m"),
                type="track",
                event=name,
                user_id=f"u-{pid}",
                anonymous_id=f"a-{pid}",
                person_id=pid,
                timestamp=t,
                received_at=t,
                properties=props,
                traits={"phone": phone},
                context={"ip": "10.0.0.1"},
            )
        )
    conn.execute(
        s.source_records.insert().values(
            id=ids["source_records"],
            tenant_id=tenant_id,
            source_id=src,
            record_key=f"k-{pid}",
            row_hash=new_id("h"),
            phone=phone,
            person_type="hcp",
            raw={"手机": phone, "姓名": "张三"},
            attributes={"note": "x"},
            received_at=t,
        )
    )
    conn.execute(
        s.person_records.insert().values(
            id=new_id("pr"),
            tenant_id=tenant_id,
            person_id=pid,
            source_record_id=ids["source_records"],
            confidence=1.0,
            rule="singleton",
            assigned_at=t,
        )
    )
    conn.execute(
        s.quarantine.insert().values(
            id=ids["quarantine"],
            tenant_id=tenant_id,
            kind="event",
            code="bad",
            reason="bad",
            issues=[{"field": "phone", "value": phone}],
            payload={"phone": phone, "person": pid},
            fixed_payload={"phone": phone},
            payload_hash=new_id("h"),
            status="open",
            created_at=t,
        )
    )
    conn.execute(
        s.webhook_deliveries.insert().values(
            id=ids["webhook_deliveries"],
            tenant_id=tenant_id,
            subscription_id=new_id("whs"),
            event_id=new_id("whe"),
            event_type="person.merged",
            payload={"data": {"person_id": pid}},
            status="delivered",
            created_at=t,
            updated_at=t,
        )
    )
    conn.execute(
        s.webhook_attempts.insert().values(
            id=ids["attempt"],
            tenant_id=tenant_id,
            delivery_id=ids["webhook_deliveries"],
            attempt=1,
            attempted_at=t,
            status_code=200,
        )
    )
    conn.execute(
        s.sends.insert().values(
            id=ids["sends"],
            tenant_id=tenant_id,
            person_id=pid,
            channel="sms",
            idempotency_key=new_id("k"),
            purpose="marketing",
            origin="test",
            status="delivered",
            variables={"phone": phone},
            detail={"to": phone},
            created_at=t,
            updated_at=t,
        )
    )
    conn.execute(
        s.tracked_links.insert().values(
            token=ids["link"],
            tenant_id=tenant_id,
            send_id=ids["sends"],
            person_id=pid,
            content_id=new_id("cnt"),
            url="https://example.cn",
            kind="link",
            created_at=t,
        )
    )
    conn.execute(
        s.audit_log.insert().values(
            id=ids["audit"],
            tenant_id=tenant_id,
            occurred_at=t,
            actor="rep1",
            action="profile.view",
            object_type="person",
            object_id=pid,
            detail={"phone": phone},
        )
    )
    return ids


def row(conn: sa.Connection, table: sa.Table, id_: str, key: str = "id") -> dict[str, Any] | None:
    r = conn.execute(sa.select(table).where(table.c[key] == id_)).mappings().first()
    return dict(r) if r else None
