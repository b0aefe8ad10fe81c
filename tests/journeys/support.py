"""Test data for journeys: persons straight into the golden-record table, tag definitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from medscrm.common import new_id
from medscrm.db import bulk
from medscrm.db.schema import persons
from medscrm.tags import service as tags

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


def make_persons(
    conn: sa.Connection, tenant_id: str, n: int, attrs=None, person_type: str = "hcp"
) -> list[str]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        a = {
            "name": f"医生{i}",
            "department": "心血管内科" if i % 2 == 0 else "内分泌科",
            "title": "主任医师",
        }
        if attrs:
            a.update(attrs(i))
        rows.append(
            {
                "id": new_id("p"),
                "tenant_id": tenant_id,
                "person_type": person_type,
                "status": "active",
                "merged_into": None,
                "attributes": a,
                "lineage": {},
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
    bulk.append_rows(conn, persons, rows)
    return [r["id"] for r in rows]


def define_tags(conn: sa.Connection, tenant_id: str, *keys: str) -> None:
    for k in keys:
        tags.define(conn, tenant_id=tenant_id, key=k, value_type="string", category="behaviour_model")


def linear(key: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A journey with an api trigger whose steps run in the listed order (next filled in)."""
    out = []
    for i, s in enumerate(steps):
        s = dict(s)
        if "next" not in s and s["type"] not in ("goal", "exit", "branch", "split") and i + 1 < len(steps):
            s["next"] = steps[i + 1]["id"]
        out.append(s)
    return {"key": key, "name": key, "triggers": [{"type": "api"}], "steps": out, **extra}


def approved_content(
    conn: sa.Connection, tenant_id: str, key: str, kind: str = "email_template", **kw: Any
) -> str:
    """An approved content item for HCPs; returns its id."""
    from medscrm.content import service as content

    item = content.create_item(
        conn,
        tenant_id=tenant_id,
        key=key,
        title=kw.pop("title", "心衰线上会议邀请"),
        kind=kind,
        audience="hcp_only",
        therapy_area="cardiology",
        topics=["heart_failure"],
        subject=kw.pop("subject", "{{ name }}，您好：会议邀请"),
        body=kw.pop("body", "尊敬的{{ name }}：诚邀您参加心衰线上学术会议。"),
        actor="author",
        **kw,
    )
    content.submit_for_review(conn, tenant_id=tenant_id, item_id=item["id"], actor="author")
    content.approve(
        conn,
        tenant_id=tenant_id,
        item_id=item["id"],
        approval_code="MLR-2026-HF-001",
        actor="reviewer",
        actor_role="compliance",
        expires_at=NOW + dt.timedelta(days=365 * 30),  # far ahead: sendable whatever the real date
    )
    return item["id"]


def open_policy(conn: sa.Connection, tenant_id: str) -> None:
    """No frequency caps, no quiet hours, fast retries: tests count every send."""
    from medscrm.outreach.settings import set_policy

    set_policy(
        conn,
        tenant_id=tenant_id,
        changes={
            "frequency_caps": {"email": [], "sms": [], "wecom": [], "wechat_template": []},
            "quiet_hours": {"start": "00:00", "end": "00:00"},
            "backoff_seconds": 1,
            "backoff_max_seconds": 2,
            "lease_seconds": 5,
        },
        actor="test",
    )


def email_channel(conn: sa.Connection, tenant_id: str, host: str = "127.0.0.1", port: int = 1) -> None:
    from medscrm.outreach.settings import configure_channel

    configure_channel(
        conn,
        tenant_id=tenant_id,
        channel="email",
        provider="smtp",
        settings={"host": host, "port": port, "from_addr": "noreply@pharma.example"},
        actor="test",
    )


def grant(conn: sa.Connection, tenant_id: str, person_ids: list[str], channel: str = "email") -> None:
    from medscrm.outreach import consent

    for pid in person_ids:
        consent.set_consent(
            conn,
            tenant_id=tenant_id,
            person_id=pid,
            channel=channel,
            purpose="marketing",
            status="granted",
            source="webinar_form",
            evidence={"form": "hf-2026"},
            actor="test",
        )
