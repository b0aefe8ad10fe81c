"""A person planted in every table that holds personal data (for the data-subject request tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from medscrm.common import new_id, utcnow
from medscrm.db import schema as s
from medscrm.privacy.tables import PERSON_TABLES


@dataclass
class Planted:
    person_id: str
    record_id: str
    phone: str  # as stored (E.164)
    local_phone: str  # as a file or a form holds it
    email: str
    name: str
    user_id: str
    source_id: str


def _filler(col: sa.Column) -> Any:
    t = col.type
    if isinstance(t, sa.TypeDecorator):  # UTCDateTime and the like: fill by the underlying type
        t = t.impl_instance
    if isinstance(t, sa.Boolean):
        return False
    if isinstance(t, sa.Integer):
        return 1
    if isinstance(t, sa.Float | sa.Double | sa.Numeric):
        return 0.5
    if isinstance(t, sa.DateTime):
        return utcnow()
    if isinstance(t, sa.JSON) or getattr(t, "impl", None) is not None and isinstance(t.impl, sa.JSON):
        return {}
    return "x"


def unique_person() -> tuple[str, str, str, str]:
    """(local phone, email, name, user id) that appear nowhere else in the database."""
    n = uuid.uuid4().int
    local = "139" + f"{n % 10**8:08d}"
    tag = uuid.uuid4().hex[:10]
    return local, f"dsr.{tag}@example.cn", f"隐私测试{tag}", f"u-{tag}"


def plant(conn: sa.Connection, tenant_id: str) -> Planted:
    """One person with a row in every table of PERSON_TABLES, their identifiers in the free-text
    and JSON columns where real data would carry them."""
    local, email, name, uid = unique_person()
    phone = "+86" + local
    pid, sr, src = new_id("per"), new_id("sr"), new_id("src")
    seg, send, dlv = new_id("seg"), new_id("snd"), new_id("whd")
    enr = new_id("jen")
    now = utcnow()
    conn.execute(
        s.sources.insert().values(
            id=src,
            tenant_id=tenant_id,
            name=f"crm-{src}",
            kind="file",
            write_key_hash=new_id("wk"),
            write_key_hint="x",
            created_at=now,
        )
    )
    conn.execute(
        s.segments.insert().values(
            id=seg,
            tenant_id=tenant_id,
            key=f"k{seg}",
            name="seg",
            kind="static",
            rule={},
            created_by="t",
            created_at=now,
            updated_at=now,
        )
    )
    attrs = {"name": name, "phone": phone, "email": email}
    overrides: dict[str, dict[str, Any]] = {
        "persons": {
            "id": pid,
            "person_type": "hcp",
            "status": "active",
            "merged_into": None,
            "attributes": attrs,
            "lineage": {},
        },
        "source_records": {
            "id": sr,
            "source_id": src,
            "import_id": None,
            "record_key": uid,
            "name": name,
            "phone": phone,
            "email": email,
            "person_type": "hcp",
            "raw": {"姓名": name, "手机": local, "邮箱": email},
            "attributes": {},
            **{
                f: None
                for f in (
                    "gender",
                    "hospital",
                    "department",
                    "title",
                    "city",
                    "province",
                    "license_no",
                    "wechat_unionid",
                    "wecom_external_userid",
                )
            },
        },
        "identities": {"type": "phone", "value": phone, "source_record_id": sr},
        "person_records": {"source_record_id": sr, "rule": "singleton"},
        "person_changes": {"kind": "created", "related": [], "detail": {}},
        "identity_review": {
            "record_a": sr,
            "record_b": new_id("sr"),
            "detail": {"name": [name, "other"]},
            "status": "open",
        },
        "identity_constraints": {"kind": "cannot_link", "record_a": sr, "record_b": new_id("sr")},
        "identity_links": {
            "relation": "alias",
            "type_a": "user_id",
            "value_a": uid,
            "type_b": "user_id",
            "value_b": "anon-" + uid,
        },
        "events": {
            "source_id": src,
            "message_id": new_id("m"),
            "type": "identify",
            "user_id": uid,
            "traits": {"phone": local, "name": name},
        },
        "quarantine": {
            "kind": "import_row",
            "code": "bad",
            "payload": {"手机": local, "姓名": name},
            "fixed_payload": None,
            "status": "open",
            "source_record_id": None,
        },
        "person_tags": {"tag_key": "k"},
        "tag_history": {"tag_key": "k"},
        "person_scores": {"score_key": "lead"},
        "segment_members": {"segment_id": seg},
        "segment_history": {"segment_id": seg, "change": "entered"},
        "consents": {
            "channel": "email",
            "purpose": "marketing",
            "status": "granted",
            "evidence": {"email": email},
        },
        "consent_history": {
            "channel": "email",
            "purpose": "marketing",
            "new_status": "granted",
            "evidence": {"email": email},
        },
        "persons_dnc": {"reason": "asked"},
        "sends": {
            "id": send,
            "channel": "email",
            "idempotency_key": new_id("k"),
            "status": "sent",
            "variables": {"email": email},
        },
        "tracked_links": {"token": new_id("tok"), "send_id": send, "kind": "link"},
        "journey_enrollments": {
            "id": enr,
            "journey_id": new_id("jny"),
            "trigger_ref": new_id("tr"),
            "status": "active",
        },
        "journey_step_runs": {"enrollment_id": enr, "idempotency_key": new_id("k")},
        "tasks": {"title": f"call {name}", "status": "open", "idempotency_key": new_id("k")},
        "webhook_deliveries": {
            "id": dlv,
            "subscription_id": new_id("whs"),
            "event_id": new_id("whe"),
            "payload": {"data": {"person_id": pid}},
            "status": "delivered",
        },
        "webhook_attempts": {"delivery_id": dlv},
        "person_restrictions": {"kind": "restricted", "reason": "test"},
        "audit_log": {
            "action": "consent.change",
            "object_type": "person",
            "object_id": pid,
            "detail": {"phone": phone},
        },
    }
    for name_, pt in PERSON_TABLES.items():
        row: dict[str, Any] = {}
        for col in pt.table.columns:
            if col.name == "tenant_id":
                row[col.name] = tenant_id
            elif col.name == "person_id":
                row[col.name] = pid
            elif col.primary_key and col.name in ("id", "token"):
                row[col.name] = new_id("x")
            elif not col.nullable and col.server_default is None:
                row[col.name] = _filler(col)
        row.update(overrides.get(name_, {}))
        conn.execute(pt.table.insert().values(**row))
    for typ, val in (("email", email), ("user_id", uid)):
        conn.execute(
            s.identities.insert().values(
                id=new_id("idn"),
                tenant_id=tenant_id,
                type=typ,
                value=val,
                person_id=pid,
                source_record_id=sr,
                created_at=now,
            )
        )
    return Planted(pid, sr, phone, local, email, name, uid, src)


def dump_text(conn: sa.Connection) -> str:
    """Every row of every table of the database (all tenants), as text."""
    out = []
    for t in s.metadata.sorted_tables:
        for r in conn.execute(sa.select(t)).all():
            out.append(repr(tuple(r)))
    return "\n".join(out)


def at(h: int) -> dt.datetime:
    return utcnow() + dt.timedelta(hours=h)
