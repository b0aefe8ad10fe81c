"""Proof of every send, for auditors (PIPL; pharma promotion rules).

Each send row carries why it was allowed or refused (see :mod:`medscrm.outreach.guardrails`): the
consent change it relied on (history id, version, SHA-256), the content approval at the time
(approval code and expiry) and each guardrail check with the values compared. This module reads
them back per journey or per person, with the person masked as the reader's role may see it, and
audits every read.
"""

from __future__ import annotations

import io
import json
from typing import Any

import sqlalchemy as sa

from medscrm.access import visible_attributes
from medscrm.accounts import service as accounts
from medscrm.common import InvalidInput, NotFound, as_utc
from medscrm.db.schema import journeys, persons, sends
from medscrm.exports import SafeDictWriter

#: the contact shown for each channel (masked without ``pii.read``)
CONTACT_ATTRIBUTE = {"email": "email", "sms": "phone"}
#: CSV columns, in order
CSV_COLUMNS = (
    "send_id",
    "created_at",
    "person_id",
    "person_name",
    "contact",
    "channel",
    "purpose",
    "origin",
    "status",
    "reason",
    "content_id",
    "consent_history_id",
    "consent_version",
    "consent_hash",
    "approval_code",
    "approval_expires_at",
    "checks",
)


def journey_id(conn: sa.Connection, *, tenant_id: str, journey: str) -> str:
    """The id of a journey given by key or id."""
    j = journeys
    found = conn.execute(
        sa.select(j.c.id).where(j.c.tenant_id == tenant_id, sa.or_(j.c.key == journey, j.c.id == journey))
    ).scalar()
    if found is None:
        raise NotFound(f"journey {journey!r} not found in this tenant")
    return found


def send_proofs(
    conn: sa.Connection,
    *,
    tenant_id: str,
    role: str,
    actor: str,
    journey: str | None = None,
    person_id: str | None = None,
    scope: sa.Select | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The sends of a journey (key or id) and/or a person, newest first, each with its proof; the
    person's name and contact as ``role`` may see them. Audited (``compliance.sends.read``)."""
    if not journey and not person_id:
        raise InvalidInput("journey", "give a journey key or a person id (or both)")
    if not 1 <= limit <= 10000:
        raise InvalidInput("limit", "must be between 1 and 10000")
    s, p = sends, persons
    q = (
        sa.select(s, p.c.attributes.label("person_attributes"))
        .select_from(s.outerjoin(p, sa.and_(p.c.tenant_id == s.c.tenant_id, p.c.id == s.c.person_id)))
        .where(s.c.tenant_id == tenant_id)
    )
    if journey:
        jid = journey_id(conn, tenant_id=tenant_id, journey=journey)
        q = q.where(s.c.origin.startswith(f"journey:{jid}:", autoescape=True))
    if person_id:
        q = q.where(s.c.person_id == person_id)
    if scope is not None:
        q = q.where(s.c.person_id.in_(scope))
    q = q.order_by(s.c.created_at.desc(), s.c.id).limit(limit)
    out = [_proof(dict(r), role) for r in conn.execute(q).mappings()]
    accounts.audit(
        conn=conn,
        tenant_id=tenant_id,
        actor=actor,
        action="compliance.sends.read",
        object_type="journey" if journey else "person",
        object_id=journey or person_id,
        detail={"journey": journey, "person_id": person_id, "count": len(out)},
    )
    return out


def _proof(row: dict[str, Any], role: str) -> dict[str, Any]:
    attrs = visible_attributes(row.pop("person_attributes") or {}, role)
    contact_key = CONTACT_ATTRIBUTE.get(row["channel"])
    return {
        "send_id": row["id"],
        "created_at": as_utc(row["created_at"]),
        "person_id": row["person_id"],
        "person_name": attrs.get("name"),
        "contact": attrs.get(contact_key) if contact_key else None,
        "channel": row["channel"],
        "purpose": row["purpose"],
        "origin": row["origin"],
        "status": row["status"],
        "reason": row["reason"],
        "content_id": row["content_id"],
        "consent_history_id": row["consent_history_id"],
        "consent_version": row["consent_version"],
        "consent_hash": row["consent_hash"],
        "approval_code": row["approval_code"],
        "approval_expires_at": as_utc(row["approval_expires_at"]),
        "checks": row["checks"] or [],
    }


def checks_text(checks: list[dict[str, Any]]) -> str:
    """Checks in one line: ``consent=pass; frequency_cap=fail; …``."""
    return "; ".join(f"{c.get('name')}={c.get('result')}" for c in checks or [])


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The report as CSV through the formula-safe writer (checks as compact JSON)."""
    buf = io.StringIO()
    w = SafeDictWriter(buf, fieldnames=list(CSV_COLUMNS))
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                **{k: r.get(k) for k in CSV_COLUMNS},
                "created_at": r["created_at"].isoformat() if r.get("created_at") else None,
                "approval_expires_at": r["approval_expires_at"].isoformat()
                if r.get("approval_expires_at")
                else None,
                "checks": json.dumps(r.get("checks") or [], ensure_ascii=False, sort_keys=True),
            }
        )
    return buf.getvalue()
