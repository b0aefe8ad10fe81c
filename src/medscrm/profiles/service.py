"""Reading profiles. Every read is tenant-scoped, masked by role and audited (PIPL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medscrm.access import (
    PII_IDENTITY_TYPES,
    hidden_events,
    mask_value,
    redact_event,
    resolve_person_id,
    visible_attributes,
)
from medscrm.accounts import service as accounts
from medscrm.accounts.roles import can
from medscrm.common import NotFound
from medscrm.db.schema import identities, person_records, persons, source_records, sources
from medscrm.profiles.events import query_events
from medscrm.schema import person as schema
from medscrm.scores.model import hide_prescription_detail, stage_from_tags
from medscrm.scores.service import scores_of
from medscrm.segments.service import segments_of
from medscrm.tags.service import tags_of

LOOKUP_TYPES = {
    "phone": "phone",
    "email": "email",
    "unionid": "wechat_unionid",
    "wecom": "wecom_external_userid",
    "license_no": "license_no",
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
}


def read_audit(person_id: str, role: str, **extra: Any) -> dict[str, Any]:
    """The audit row of a profile read (``accounts.audit`` / ``audit_committed`` keywords)."""
    return {
        "action": "profile.read",
        "object_type": "person",
        "object_id": person_id,
        "detail": {"role": role, "pii": can(role, "pii.read"), **extra},
    }


def get_profile(
    conn: sa.Connection, *, tenant_id: str, person_id: str, role: str, actor: str, audit: bool = True
) -> dict[str, Any]:
    p = resolve_person_id(conn, tenant_id, person_id)
    ids = conn.execute(
        sa.select(identities.c.type, identities.c.value)
        .where(identities.c.tenant_id == tenant_id, identities.c.person_id == p["id"])
        .order_by(identities.c.type, identities.c.value)
    ).all()
    show_pii = can(role, "pii.read")
    idents = [
        {"type": t, "value": v if (show_pii or t not in PII_IDENTITY_TYPES) else mask_value(t, v)}
        for t, v in ids
    ]
    n_records = conn.execute(
        sa.select(sa.func.count())
        .select_from(person_records)
        .where(person_records.c.tenant_id == tenant_id, person_records.c.person_id == p["id"])
    ).scalar()
    lineage = {
        k: v for k, v in (p["lineage"] or {}).items() if k in visible_attributes(p["attributes"] or {}, role)
    }
    if not show_pii:
        for lin in lineage.values():
            lin["conflicts"] = ["***"] * len(lin.get("conflicts", []))
    if audit:
        accounts.audit(conn=conn, tenant_id=tenant_id, actor=actor, **read_audit(p["id"], role))
    tags = _tags_of(conn, tenant_id, p["id"], role)
    stage = stage_from_tags({t["key"]: t["value"] for t in tags})
    return {
        "person_id": p["id"],
        "requested_id": person_id,
        "person_type": p["person_type"],
        "attributes": visible_attributes(p["attributes"] or {}, role),
        "lineage": lineage,
        "identities": idents,
        "source_records": n_records,
        "tags": tags,
        "segments": _segments_of(conn, tenant_id, p["id"]),
        "scores": _scores_of(conn, tenant_id, p["id"], role),
        "stage": stage,
        "tier": stage["potential_tier"],
        "created_at": p["created_at"],
        "updated_at": p["updated_at"],
    }


def _tags_of(conn: sa.Connection, tenant_id: str, person_id: str, role: str) -> list[dict[str, Any]]:
    out = tags_of(conn, tenant_id=tenant_id, person_id=person_id)
    if not can(role, "prescriptions.read"):
        for t in out:
            t["reason"] = hide_prescription_detail(t.get("reason"))
    return out


def _scores_of(conn: sa.Connection, tenant_id: str, person_id: str, role: str) -> dict[str, Any]:
    """Scores with their reasons; per-HCP prescription detail only for roles that may read it."""

    return scores_of(
        conn, tenant_id=tenant_id, person_id=person_id, prescriptions=can(role, "prescriptions.read")
    )


def _segments_of(conn: sa.Connection, tenant_id: str, person_id: str) -> list[dict[str, Any]]:
    return segments_of(conn, tenant_id=tenant_id, person_id=person_id)


def lookup(
    conn: sa.Connection, *, tenant_id: str, type_: str, value: str, scope: sa.Select | None = None
) -> str:
    """Person id for an identifier (phone/email are normalised the way imports normalise them).

    ``scope``: a SELECT of the person ids the caller may see (a rep's own HCPs); None: any."""

    kind = LOOKUP_TYPES.get(type_)
    if not kind:
        raise ValueError(f"type: {type_!r} is not one of {', '.join(LOOKUP_TYPES)}")
    norm = {
        "phone": schema.normalize_phone,
        "email": schema.normalize_email,
        "license_no": schema.normalize_license_no,
    }.get(kind)
    v = norm(value) if norm else value.strip()
    q = sa.select(identities.c.person_id).where(
        identities.c.tenant_id == tenant_id, identities.c.type == kind, identities.c.value == v
    )
    if scope is not None:
        q = q.where(identities.c.person_id.in_(scope))
    pid = conn.execute(q.order_by(identities.c.person_id).limit(1)).scalar()
    if not pid:
        raise NotFound(f"no person with {type_} {value!r}")
    return pid


def search(
    conn: sa.Connection,
    *,
    tenant_id: str,
    q: str | None = None,
    hospital: str | None = None,
    department: str | None = None,
    person_type: str | None = None,
    role: str = "analyst",
    limit: int = 50,
    offset: int = 0,
    scope: sa.Select | None = None,
) -> list[dict[str, Any]]:
    """Search golden records by name / hospital / department (substring, case-insensitive);
    ``scope``: only these person ids (a SELECT: a rep's own HCPs)."""
    p = persons
    attr = p.c.attributes
    name_col = sa.cast(attr["name"].as_string(), sa.String)
    stmt = sa.select(p.c.id, p.c.person_type, p.c.attributes).where(
        p.c.tenant_id == tenant_id, p.c.status == "active"
    )
    if q:
        stmt = stmt.where(name_col.icontains(q, autoescape=True))
    if hospital:
        stmt = stmt.where(
            sa.cast(attr["hospital"].as_string(), sa.String).icontains(hospital, autoescape=True)
        )
    if department:
        stmt = stmt.where(
            sa.cast(attr["department"].as_string(), sa.String).icontains(department, autoescape=True)
        )
    if person_type:
        stmt = stmt.where(p.c.person_type == person_type)
    if scope is not None:
        stmt = stmt.where(p.c.id.in_(scope))
    rows = conn.execute(stmt.order_by(name_col, p.c.id).limit(limit).offset(offset)).mappings().all()
    keep = ("name", "hospital", "department", "title", "city", "phone", "email")
    return [
        {
            "person_id": r["id"],
            "person_type": r["person_type"],
            **{k: v for k, v in visible_attributes(r["attributes"] or {}, role).items() if k in keep},
        }
        for r in rows
    ]


def records_of(conn: sa.Connection, *, tenant_id: str, person_id: str, role: str) -> list[dict[str, Any]]:
    sr = source_records
    q = (
        sa.select(
            sr.c.id,
            sources.c.name.label("source"),
            sr.c.received_at,
            sr.c.record_key,
            *[sr.c[f] for f in ("name", "hospital", "department", "title", "phone", "email")],
        )
        .join(person_records, person_records.c.source_record_id == sr.c.id)
        .join(sources, sources.c.id == sr.c.source_id)
        .where(person_records.c.tenant_id == tenant_id, person_records.c.person_id == person_id)
        .order_by(sr.c.received_at.desc())
    )
    return [visible_attributes(dict(r), role) for r in conn.execute(q).mappings()]


def timeline(
    conn: sa.Connection,
    *,
    tenant_id: str,
    person_id: str,
    limit: int = 50,
    before=None,
    role: str | None = None,
    after=None,
) -> list[dict]:
    """The person's events, newest first; ``after``: the (timestamp, id) of the last event of the
    previous page (``profiles.events.decode_cursor``). For a role without ``prescriptions.read`` (the rep-filing
    rules), prescription events are left out and prescription properties removed; for a role without
    ``pii.read`` personal data in the events is masked (:func:`redact_event`)."""
    p = resolve_person_id(conn, tenant_id, person_id)
    rows = query_events(
        conn,
        tenant_id=tenant_id,
        person_id=p["id"],
        limit=limit,
        before=before,
        exclude_events=hidden_events(role) if role is not None else (),
        after=after,
    )
    return rows if role is None else [redact_event(r, role) for r in rows]
