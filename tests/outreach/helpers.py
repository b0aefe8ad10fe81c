"""Shared test helpers for outreach and content tests: persons, approved content, channels."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.common import new_id, utcnow
from medscrm.content import service as content
from medscrm.db.schema import identities, persons
from medscrm.outreach import consent
from medscrm.outreach.settings import configure_channel, set_policy

#: a daytime moment in China (10:00 Asia/Shanghai): outside the default quiet hours
DAY = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
NIGHT = dt.datetime(2026, 11, 24, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai


def make_person(conn: sa.Connection, tenant_id: str, *, person_type: str = "hcp", **attrs: Any) -> str:
    pid = new_id("p")
    now = utcnow()
    attrs.setdefault("name", "张伟")
    conn.execute(
        persons.insert().values(
            id=pid,
            tenant_id=tenant_id,
            person_type=person_type,
            status="active",
            attributes={"person_type": person_type, **attrs},
            lineage={},
            created_at=now,
            updated_at=now,
        )
    )
    for t in ("wechat_openid", "wecom_external_userid", "phone", "email"):
        if attrs.get(t):
            conn.execute(
                identities.insert().values(
                    id=new_id("id"),
                    tenant_id=tenant_id,
                    type=t,
                    value=attrs[t],
                    person_id=pid,
                    created_at=now,
                )
            )
    return pid


def grant(
    conn: sa.Connection, tenant_id: str, pid: str, channel: str = "any", purpose: str = "marketing"
) -> None:
    consent.set_consent(
        conn,
        tenant_id=tenant_id,
        person_id=pid,
        channel=channel,
        purpose=purpose,
        status="granted",
        source="test_form",
        evidence={"form": "t1"},
        actor="test",
    )


def approved_item(
    conn: sa.Connection,
    tenant_id: str,
    *,
    key: str | None = None,
    audience: str = "hcp_only",
    prescription: bool = False,
    expires_at: dt.datetime | None = None,
    **kw: Any,
) -> dict[str, Any]:
    item = content.create_item(
        conn,
        tenant_id=tenant_id,
        key=key or f"c-{uuid.uuid4().hex[:8]}",
        title=kw.pop("title", "糖尿病新指南解读"),
        kind=kw.pop("kind", "article"),
        audience=audience,
        prescription=prescription,
        product=kw.pop("product", "DrugX" if prescription else None),
        therapy_area=kw.pop("therapy_area", "diabetes"),
        topics=kw.pop("topics", ["guideline", "insulin"]),
        subject=kw.pop("subject", "{{ name }}，您好：新指南"),
        body=kw.pop("body", "尊敬的{{ name }}：请阅读 {{ url }}"),
        url=kw.pop("url", "https://example.org/guide"),
        actor="author1",
        **kw,
    )
    content.submit_for_review(conn, tenant_id=tenant_id, item_id=item["id"], actor="author1")
    return content.approve(
        conn,
        tenant_id=tenant_id,
        item_id=item["id"],
        approval_code="MLR-2026-001",
        actor="reviewer1",
        actor_role="compliance",
        expires_at=expires_at or DAY + dt.timedelta(days=365 * 30),  # sendable whatever the real date
    )


def setup_email(
    conn: sa.Connection, tenant_id: str, host: str = "127.0.0.1", port: int = 1, **extra: Any
) -> None:
    configure_channel(
        conn,
        tenant_id=tenant_id,
        channel="email",
        provider="smtp",
        settings={"host": host, "port": port, "from_addr": "noreply@pharma.example", **extra},
        actor="test",
    )


def fast_policy(conn: sa.Connection, tenant_id: str, **changes: Any) -> None:
    set_policy(
        conn,
        tenant_id=tenant_id,
        changes={"backoff_seconds": 1, "backoff_max_seconds": 2, **changes},
        actor="test",
    )


def ensure_tenant(engine: sa.Engine) -> str:
    with engine.begin() as conn:
        return accounts.ensure_tenant(conn=conn, slug=f"t-{uuid.uuid4().hex[:10]}")["id"]
